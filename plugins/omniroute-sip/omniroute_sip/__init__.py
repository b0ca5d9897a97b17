"""omniroute channel: voice over SIP. Calls wait in the engine's queues; agents get them by redirect.

A minimal user-agent server (RFC 3261) on UDP and TCP:

- **INVITE**: 100 Trying at once; the caller ID (the From URI's user part)
  resolves the customer; the call is stored and queued, then 180 Ringing holds
  it while it waits. When an agent accepts its offer, 302 Moved Temporarily
  sends the caller's side to the agent's SIP address (``agent_uris``, or
  ``agent_uri_template``).
- **CANCEL** before that: 200 for the CANCEL, 487 for the INVITE, and the
  interaction is abandoned.
- **INFO** with a DTMF digit (``application/dtmf-relay`` or
  ``application/dtmf``) while the call waits: the ``menu`` moves it to that
  digit's queue (a simple IVR).
- **Business hours**: outside ``open_hours`` a call goes to
  ``after_hours_queue``, or is refused with 480 when there is none.
- A retransmitted request gets the last response again; a final response on
  UDP is repeated until the ACK comes (RFC 3261 timer G), at most 7 times.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, cast

import anyio
import msgspec
from anyio.abc import TaskGroup, TaskStatus
from msgspec import Meta, Struct

from omniroute import hookimpl
from omniroute.channels import (
    Capabilities,
    ChannelConnector,
    ChannelGateway,
    ChannelKind,
    ChannelSetup,
    DeliveryError,
    Inbound,
    Outbound,
)
from omniroute.errors import OmnirouteError
from omniroute.identity import normalize
from omniroute.model import TaskAssigned
from omniroute.runtime.api import IdentityIn
from omniroute_sip.message import SipError, SipMessage, new_tag, parse, response

__all__ = ["KIND", "SipConnector", "SipOptions"]

log = logging.getLogger("omniroute_sip")
_ALLOW = "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"
_RETRANSMIT = (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0)


class OpenHours(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timezone: str = "UTC"
    # Monday is 0.
    days: list[Annotated[int, Meta(ge=0, le=6)]] = msgspec.field(default_factory=lambda: [0, 1, 2, 3, 4])
    opens: Annotated[str, Meta(pattern=r"^[0-2][0-9]:[0-5][0-9]$")] = "08:00"
    closes: Annotated[str, Meta(pattern=r"^[0-2][0-9]:[0-5][0-9]$")] = "18:00"

    def open_at(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.opens <= local.strftime("%H:%M") < self.closes


class SipOptions(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    listen_host: str = "127.0.0.1"
    # UDP and TCP on the same port (0: any free one, see ``SipConnector.port``).
    listen_port: Annotated[int, Meta(ge=0, le=65535)] = 5060
    agent_uris: dict[str, str] = {}
    agent_uri_template: str = "sip:{agent}@127.0.0.1"
    # A digit pressed while waiting moves the call to that queue.
    menu: dict[Annotated[str, Meta(pattern=r"^[0-9*#]$")], str] = {}
    open_hours: OpenHours | None = None
    after_hours_queue: str | None = None


@dataclass(eq=False)
class _Call:
    invite: SipMessage
    send: Callable[[bytes], None]
    udp: bool
    to_tag: str = field(default_factory=new_tag)
    interaction: str | None = None
    last: bytes = b""
    final: bool = False
    acked: anyio.Event = field(default_factory=anyio.Event)

    def reply(self, data: bytes, *, final: bool = False) -> None:
        self.last = data
        self.final = self.final or final
        self.send(data)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, connector: SipConnector) -> None:
        self.connector = connector
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport has sendto() without subclassing DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        transport = self.transport
        assert transport is not None
        self.connector._arrived(data, lambda out: transport.sendto(out, addr), udp=True)


class SipConnector(ChannelConnector):
    capabilities: ClassVar[Capabilities] = Capabilities(synchronous=True, rich_media=False, typing=False)
    options: SipOptions

    def __init__(self, setup: ChannelSetup, options: SipOptions) -> None:
        super().__init__(setup, options)
        self.port: int | None = None
        self._calls: dict[str, _Call] = {}
        self._by_interaction: dict[str, _Call] = {}
        self._tg: TaskGroup | None = None
        # Requests from the transports' callbacks, handed to tasks by one reader
        # (a callback is not a task, and cannot start one in the group itself).
        self._arrivals: asyncio.Queue[tuple[SipMessage, Callable[[bytes], None], bool]] = asyncio.Queue(
            10_000
        )
        self.refused = 0
        self.dropped = 0

    # ----- transports -----

    async def run(
        self, gateway: ChannelGateway, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self._gateway = gateway
        loop = asyncio.get_running_loop()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tcp = await asyncio.start_server(self._tcp, self.options.listen_host, self.options.listen_port)
            self.port = tcp.sockets[0].getsockname()[1]
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.options.listen_host, self.port)
            )
            tg.start_soon(self._follow_assignments)
            tg.start_soon(self._dispatch, tg)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                udp.close()
                tcp.close()

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                self._arrived(head + body, writer.write, udp=False)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _arrived(self, data: bytes, send: Callable[[bytes], None], *, udp: bool) -> None:
        if not data.strip() or data.startswith(b"SIP/2.0 "):
            return  # a keep-alive, or a response (a UAS sends no requests)
        try:
            message = parse(data)
        except SipError as e:
            self.refused += 1
            log.warning("channel %s: refused: %s", self.setup.channel, e)
            return
        try:
            self._arrivals.put_nowait((message, send, udp))
        except asyncio.QueueFull:
            self.dropped += 1  # over capacity: the caller's side retransmits

    async def _dispatch(self, tg: TaskGroup) -> None:
        while True:
            message, send, udp = await self._arrivals.get()
            tg.start_soon(self._handle, message, send, udp)

    # ----- requests -----

    async def _handle(self, message: SipMessage, send: Callable[[bytes], None], udp: bool) -> None:
        method = message.method
        try:
            if method == "INVITE":
                await self._invite(message, send, udp)
            elif method == "ACK":
                call = self._calls.get(message.call_id)
                if call is not None:
                    call.acked.set()
            elif method == "CANCEL":
                await self._cancel(message, send)
            elif method == "INFO":
                await self._info(message, send)
            elif method in ("BYE", "OPTIONS"):
                send(response(message, 200, headers=[("Allow", _ALLOW)]))
            else:
                send(response(message, 405, headers=[("Allow", _ALLOW)]))
        except Exception:
            log.exception("channel %s: %s %s failed", self.setup.channel, method, message.call_id)
            send(response(message, 500))

    async def _invite(self, invite: SipMessage, send: Callable[[bytes], None], udp: bool) -> None:
        known = self._calls.get(invite.call_id)
        if known is not None:
            known.send(known.last)  # a retransmission: the last answer again
            return
        call = self._calls[invite.call_id] = _Call(invite, send, udp)
        call.reply(response(invite, 100))
        queue = self.setup.queue
        hours = self.options.open_hours
        if hours is not None and not hours.open_at(dt.datetime.now(dt.UTC)):
            if self.options.after_hours_queue is None:
                self._answer(
                    call, response(invite, 480, to_tag=call.to_tag, headers=[("Retry-After", "3600")])
                )
                return
            queue = self.options.after_hours_queue
        caller = invite.caller()
        identities = []
        try:
            number = normalize("phone", caller, default_region=self.gateway.runtime.settings.default_region)
            identities.append(IdentityIn(kind="phone", value=number.value))
        except OmnirouteError:
            pass  # an anonymous or unparseable caller ID: a customer of their own
        received = await self.gateway.receive(
            Inbound(
                provider_id=invite.call_id,
                identities=identities,
                body=f"Call from {caller or 'a withheld number'}",
            ),
            queue=queue,
        )
        call.interaction = received.interaction
        self._by_interaction[received.interaction] = call
        if not call.final:
            call.reply(response(invite, 180, to_tag=call.to_tag))

    def _answer(self, call: _Call, data: bytes) -> None:
        """Send the final response now (so whatever comes next sees the call
        answered), then repeat it until the ACK and forget the call."""
        call.reply(data, final=True)
        assert self._tg is not None
        self._tg.start_soon(self._linger, call, data)

    async def _linger(self, call: _Call, data: bytes) -> None:
        """On UDP a final response is repeated until the ACK; then the call is forgotten."""
        if call.udp:
            for wait in _RETRANSMIT:
                with anyio.move_on_after(wait):
                    await call.acked.wait()
                if call.acked.is_set():
                    break
                call.send(data)
        else:
            with anyio.move_on_after(32):
                await call.acked.wait()
        # Late retransmissions of the INVITE still find the answer for a while.
        await anyio.sleep(4)
        self._calls.pop(call.invite.call_id, None)
        if call.interaction is not None:
            self._by_interaction.pop(call.interaction, None)

    async def _cancel(self, cancel: SipMessage, send: Callable[[bytes], None]) -> None:
        call = self._calls.get(cancel.call_id)
        if call is None:
            send(response(cancel, 481))
            return
        send(response(cancel, 200, to_tag=call.to_tag))
        if call.final:
            return  # already answered (redirected): the CANCEL changes nothing
        # Final before the runtime is asked, so an assignment racing it finds the call answered.
        self._answer(call, response(call.invite, 487, to_tag=call.to_tag))
        for _ in range(200):
            if call.interaction is not None:
                break
            await anyio.sleep(0.01)  # the INVITE is still being stored
        if call.interaction is not None:
            try:
                await self.gateway.runtime.cancel(call.interaction, status="abandoned")
            except OmnirouteError as e:
                log.info("channel %s: cancelling %s: %s", self.setup.channel, call.interaction, e)

    async def _info(self, info: SipMessage, send: Callable[[bytes], None]) -> None:
        call = self._calls.get(info.call_id)
        if call is None:
            send(response(info, 481))
            return
        send(response(info, 200, to_tag=call.to_tag))
        kind = (info.get("content-type") or "").lower()
        text = info.body.decode("utf-8", "replace")
        digit = None
        if kind.startswith("application/dtmf-relay"):
            found = re.search(r"(?im)^signal\s*=\s*([0-9*#])", text)
            digit = found.group(1) if found else None
        elif kind.startswith("application/dtmf"):
            digit = text.strip()[:1] or None
        queue = self.options.menu.get(digit) if digit is not None else None
        if queue is None or call.interaction is None:
            return
        try:
            await self.gateway.runtime.transfer(call.interaction, to_queue=queue)
        except OmnirouteError as e:
            log.info("channel %s: menu %s for %s: %s", self.setup.channel, digit, call.interaction, e)

    # ----- the agent accepted: redirect -----

    async def _follow_assignments(self) -> None:
        # Catching up from the log if it falls behind: a missed assignment would leave a caller ringing.
        with self.gateway.runtime.subscribe(types=["task_assigned"], catch_up=True, name="sip") as events:
            async for envelope in events:
                data = envelope.data
                if not isinstance(data, TaskAssigned):
                    continue
                call = self._by_interaction.get(data.task)
                if call is None or call.final:
                    continue
                uri = self.options.agent_uris.get(data.agent) or self.options.agent_uri_template.format(
                    agent=data.agent
                )
                self._answer(
                    call, response(call.invite, 302, to_tag=call.to_tag, headers=[("Contact", f"<{uri}>")])
                )

    async def send(self, message: Outbound) -> str | None:
        raise DeliveryError("voice: a call carries no written messages", retry=False)


KIND = ChannelKind(
    name="sip",
    connector=SipConnector,
    options=SipOptions,
    description="voice over SIP (UDP and TCP): calls queue with 180 Ringing, agents get them by 302 redirect",
)


@hookimpl
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    register(KIND)
