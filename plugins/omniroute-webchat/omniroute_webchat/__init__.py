"""omniroute channel: web chat. An embeddable widget (plain JavaScript) talks to the server over WebSocket.

- ``GET /api/v1/channels/{channel}/widget.js``: the widget; one
  ``<script src=".../widget.js" async></script>`` on any page. ``GET .../demo``
  is a page with nothing else on it.
- ``WebSocket .../socket?visitor=<id>``: the visitor's connection. The widget
  keeps a random visitor id in the browser; the visitor is the customer
  with the identity ``chat:<id>``. Each chat is its own interaction (a
  synchronous channel); a visitor who comes back while it is live rejoins it
  and gets its transcript.
- The pre-chat form's e-mail address or phone number goes with the first
  message, so a visitor is tied to the customer who e-mailed or called
  before; an address typed later in the chat merges the records too (the
  runtime finds identities in what customers write).
- "Call me" asks for a callback: a new outbound task on ``callback_channel``
  in ``callback_queue``, in the chat's conversation, so the agent who calls
  back sees the chat transcript with the offer.
- A visitor who leaves before being answered abandons after
  ``abandon_after_seconds`` without a connection.
- Typing shows both ways and is never stored: the visitor's reaches the
  agent's stream as ``{"signal": {"typing": true, ...}}``, the agent's (the
  ``typing`` socket command) reaches the widget.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any, ClassVar

import anyio
import msgspec
from anyio.abc import TaskStatus
from litestar import Response, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import BaseRouteHandler
from msgspec import Meta, Struct

from omniroute import hookimpl
from omniroute.channels import (
    Capabilities,
    ChannelConnector,
    ChannelGateway,
    ChannelKind,
    ChannelSetup,
    Inbound,
    Outbound,
)
from omniroute.errors import OmnirouteError
from omniroute.runtime.api import IdentityIn, NewInteraction

__all__ = ["KIND", "WebchatConnector", "WebchatOptions"]

_VISITOR = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_LIVE = ("waiting", "offered", "assigned")


class WebchatOptions(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, Meta(max_length=80)] = "Chat with us"
    # Where "call me" puts the callback (a voice channel and its queue); without them, no button.
    callback_channel: str | None = None
    callback_queue: str | None = None
    abandon_after_seconds: Annotated[float, Meta(gt=0, le=3600)] = 60.0
    max_message_chars: Annotated[int, Meta(ge=1, le=65536)] = 4000


class _Start(Struct, frozen=True, kw_only=True, tag="start", tag_field="op"):
    name: Annotated[str, Meta(max_length=256)] | None = None
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=64)] | None = None


class _Say(Struct, frozen=True, kw_only=True, tag="message", tag_field="op"):
    id: Annotated[str, Meta(min_length=1, max_length=64)]
    text: Annotated[str, Meta(min_length=1)]


class _CallMe(Struct, frozen=True, kw_only=True, tag="callback", tag_field="op"):
    phone: Annotated[str, Meta(min_length=3, max_length=64)]


class _Typing(Struct, frozen=True, kw_only=True, tag="typing", tag_field="op"):
    pass


_commands = msgspec.json.Decoder(_Start | _Say | _CallMe | _Typing)
_encode = msgspec.json.Encoder().encode


class _Visit:
    """One visitor's state while connected (several tabs share it)."""

    def __init__(self, visitor: str) -> None:
        self.visitor = visitor
        self.sockets: set[WebSocket[Any, Any, Any]] = set()
        self.start: _Start = _Start()
        self.interaction: str | None = None
        self.left_at: float | None = None


class WebchatConnector(ChannelConnector):
    capabilities: ClassVar[Capabilities] = Capabilities(synchronous=True, rich_media=False, typing=True)
    options: WebchatOptions

    def __init__(self, setup: ChannelSetup, options: WebchatOptions) -> None:
        super().__init__(setup, options)
        self._visits: dict[str, _Visit] = {}
        self._by_interaction: dict[str, str] = {}
        self._widget = resources.files("omniroute_webchat").joinpath("widget.js").read_text()
        self._demo = resources.files("omniroute_webchat").joinpath("demo.html").read_text()

    async def run(
        self, gateway: ChannelGateway, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self._gateway = gateway
        task_status.started()
        while True:
            await anyio.sleep(min(5.0, self.options.abandon_after_seconds / 2))
            await self._abandon_the_departed()

    async def _abandon_the_departed(self) -> None:
        now = anyio.current_time()
        for visit in list(self._visits.values()):
            if (
                visit.sockets
                or visit.left_at is None
                or now - visit.left_at < self.options.abandon_after_seconds
            ):
                continue
            del self._visits[visit.visitor]
            if visit.interaction is None:
                continue
            self._by_interaction.pop(visit.interaction, None)
            try:
                interaction = await self.gateway.runtime.interaction(visit.interaction)
                if interaction.status in ("waiting", "offered"):
                    await self.gateway.runtime.cancel(visit.interaction, status="abandoned")
            except OmnirouteError:
                pass  # answered or ended meanwhile: nothing to abandon

    def routes(self) -> list[BaseRouteHandler]:
        connector = self

        @get("/widget.js", media_type="text/javascript", summary="The embeddable chat widget")
        async def widget() -> Response[str]:
            return Response(
                connector._widget, media_type="text/javascript", headers={"Cache-Control": "max-age=300"}
            )

        @get("/demo", media_type="text/html", summary="A page with the widget on it")
        async def demo() -> Response[str]:
            page = connector._demo.replace("{{title}}", connector.options.title)
            return Response(page, media_type="text/html")

        @websocket("/socket")
        async def socket(socket: WebSocket[Any, Any, Any]) -> None:
            visitor = socket.query_params.get("visitor", "")
            await socket.accept()
            if not _VISITOR.match(str(visitor)):
                # Accepted first, so the widget reads why (a refused handshake says only 403).
                await socket.close(code=4400, reason="visitor: 16 to 64 letters, digits, - or _")
                return
            await connector._serve(socket, str(visitor))

        return [widget, demo, socket]

    async def _send(self, socket: WebSocket[Any, Any, Any], message: dict[str, Any]) -> None:
        await socket.send_data(_encode(message).decode(), mode="text")

    async def _serve(self, socket: WebSocket[Any, Any, Any], visitor: str) -> None:
        visit = self._visits.get(visitor)
        if visit is None:
            visit = self._visits[visitor] = _Visit(visitor)
            await self._find_live(visit)
        visit.sockets.add(socket)
        visit.left_at = None
        try:
            await self._send(
                socket,
                {
                    "hello": {
                        "title": self.options.title,
                        "callback": self.options.callback_channel is not None,
                        "transcript": await self._transcript(visit),
                    }
                },
            )
            while True:
                try:
                    text = await socket.receive_text()
                except WebSocketDisconnect:
                    return
                await self._command(socket, visit, text)
        finally:
            visit.sockets.discard(socket)
            if not visit.sockets:
                visit.left_at = anyio.current_time()

    async def _find_live(self, visit: _Visit) -> None:
        """A visitor coming back (another tab, a restart) to a chat still live rejoins it."""
        runtime = self.gateway.runtime
        customer = await runtime.find_customer("chat", visit.visitor)
        if customer is not None:
            live = await runtime.live_interaction(customer.id, self.setup.channel)
            if live is not None:
                visit.interaction = live.id
                self._by_interaction[live.id] = visit.visitor

    async def _transcript(self, visit: _Visit) -> list[dict[str, Any]]:
        if visit.interaction is None:
            return []
        return [
            {
                "id": m.id,
                "from": "visitor" if m.direction == "inbound" else "agent",
                "text": m.body,
                "at": m.at,
            }
            for m in await self.gateway.runtime.messages(visit.interaction)
            if m.direction != "internal"
        ]

    async def _command(self, socket: WebSocket[Any, Any, Any], visit: _Visit, text: str) -> None:
        try:
            command = _commands.decode(text)
        except msgspec.ValidationError as e:
            await self._send(socket, {"error": f"{e}"})
            return
        except msgspec.DecodeError as e:
            await self._send(socket, {"error": f"command: not JSON: {e}"})
            return
        try:
            match command:
                case _Start():
                    visit.start = command
                    await self._send(socket, {"started": True})
                case _Say(id=client_id, text=said):
                    if len(said) > self.options.max_message_chars:
                        raise OmnirouteError(f"text: over {self.options.max_message_chars} characters")
                    await self._say(visit, client_id, said)
                    for peer in list(visit.sockets):
                        await self._send(peer, {"ack": client_id, "text": said})
                case _Typing():
                    # To the agent's desktop now, or nowhere: typing is never stored.
                    if visit.interaction is not None:
                        self.gateway.signal(visit.interaction, {"typing": True})
                case _CallMe(phone=phone):
                    task = await self._callback(visit, phone)
                    await self._send(socket, {"callback": task})
        except OmnirouteError as e:
            await self._send(socket, {"error": str(e)})

    def _identities(self, visit: _Visit) -> list[IdentityIn]:
        found = [IdentityIn(kind="chat", value=visit.visitor)]
        if visit.start.email:
            found.append(IdentityIn(kind="email", value=visit.start.email))
        if visit.start.phone:
            found.append(IdentityIn(kind="phone", value=visit.start.phone))
        return found

    async def _say(self, visit: _Visit, client_id: str, text: str) -> None:
        if visit.interaction is not None:
            current = await self.gateway.runtime.interaction(visit.interaction)
            if current.status not in _LIVE:
                # The agent finished that chat: what the visitor writes now is a new one.
                self._by_interaction.pop(visit.interaction, None)
                visit.interaction = None
        received = await self.gateway.receive(
            Inbound(
                provider_id=f"{visit.visitor}:{client_id}",
                identities=self._identities(visit),
                body=text,
                display_name=visit.start.name,
            ),
            interaction=visit.interaction,
        )
        visit.interaction = received.interaction
        self._by_interaction[received.interaction] = visit.visitor

    async def _callback(self, visit: _Visit, phone: str) -> str:
        channel, queue = self.options.callback_channel, self.options.callback_queue
        if channel is None or queue is None:
            raise OmnirouteError("callback: this chat offers no callbacks")
        runtime = self.gateway.runtime
        conversation = None
        if visit.interaction is not None:
            conversation = (await runtime.interaction(visit.interaction)).conversation_id
        ack = await runtime.create_interaction(
            NewInteraction(
                channel=channel,
                queue=queue,
                direction="outbound",
                identities=[*self._identities(visit), IdentityIn(kind="phone", value=phone)],
                conversation=conversation,
                display_name=visit.start.name,
                subject="Callback requested in the web chat",
                attributes={"callback_number": phone, "requested_on": self.setup.channel},
            )
        )
        return ack.interaction

    async def signal(self, interaction: str, payload: dict[str, Any]) -> bool:
        """The agent is typing: the visitor's window says so."""
        visitor = self._by_interaction.get(interaction)
        visit = self._visits.get(visitor) if visitor is not None else None
        if visit is None or "typing" not in payload:
            return False
        for socket in list(visit.sockets):
            await self._send(socket, {"typing": bool(payload["typing"])})
        return True

    async def send(self, message: Outbound) -> str | None:
        visitor = self._by_interaction.get(message.interaction_id)
        visit = self._visits.get(visitor) if visitor is not None else None
        if visit is not None:
            for socket in list(visit.sockets):
                await self._send(
                    socket, {"message": {"id": message.message_id, "from": "agent", "text": message.body}}
                )
        # Not connected: the visitor gets it with the transcript on coming back.
        return None


KIND = ChannelKind(
    name="webchat",
    connector=WebchatConnector,
    options=WebchatOptions,
    description="web chat: an embeddable widget over WebSocket, with call-me callbacks",
)


@hookimpl
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    register(KIND)
