"""The runtime as a channel connector may use it: receive, report deliveries."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgspec
from msgspec import Struct

from omniroute.channels.connector import Capabilities, ChannelSetup, Inbound
from omniroute.errors import from_validation
from omniroute.identity import normalize
from omniroute.runtime.api import MessageIn, NewInteraction
from omniroute.runtime.runtime import Runtime
from omniroute.store import Delivery
from omniroute.store.records import DeliveryStatus

__all__ = ["ChannelGateway", "Received", "stable_id"]


def stable_id(prefix: str, channel: str, provider_id: str) -> str:
    """The same id for the same provider message on the same channel, whatever its length."""
    digest = hashlib.sha256(f"{channel}\0{provider_id}".encode()).hexdigest()[:32]
    return f"{prefix}-{digest}"


class Received(Struct, frozen=True, kw_only=True):
    """What became of an inbound message."""

    message: str
    interaction: str
    customer: str
    # A new interaction was made for it (else it joined a live one).
    new_interaction: bool
    # The provider delivered it before: nothing was stored again.
    duplicate: bool


class ChannelGateway:
    """One channel's door into the runtime. Every message is stored before
    ``receive`` returns, so a connector acknowledges to its provider only
    what survives a crash; a retried delivery (the same ``provider_id``) is
    recognised and stored once."""

    def __init__(
        self,
        runtime: Runtime,
        setup: ChannelSetup,
        capabilities: Capabilities,
        on_signal: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.setup = setup
        self.capabilities = capabilities
        self._on_signal = on_signal
        # One customer's messages are taken one at a time: two arriving
        # together must not both open an interaction.
        self._locks: dict[tuple[str, str], tuple[anyio.Lock, int]] = {}

    @property
    def channel(self) -> str:
        return self.setup.channel

    @asynccontextmanager
    async def _customer_lock(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (anyio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def receive(
        self,
        inbound: Inbound,
        *,
        interaction: str | None = None,
        conversation: str | None = None,
        queue: str | None = None,
    ) -> Received:
        """Store a customer's message. On an asynchronous channel it joins the
        customer's live interaction there, else it opens one in the setup's
        queue; ``interaction`` names the one it belongs to (a synchronous
        connector's session, or the one an e-mail replies to), and
        ``conversation`` the conversation a new interaction joins (a reply to
        finished work); ``queue`` where a new interaction waits, when not the
        setup's (after hours, say)."""
        try:
            inbound = msgspec.convert(msgspec.to_builtins(inbound), Inbound)
        except msgspec.ValidationError as e:
            raise from_validation(e, where="inbound") from e
        message_id = stable_id("m", self.channel, inbound.provider_id)
        message = MessageIn(
            id=message_id,
            body=inbound.body,
            content_type=inbound.content_type,
            attachments=inbound.attachments,
        )
        region = self.runtime.settings.default_region
        keys = [
            normalize(i.kind, i.value, default_region=region, field=f"inbound.identities[{n}]")
            for n, i in enumerate(inbound.identities)
        ]
        pairs = [(k.kind, k.value) for k in keys]
        lock_key = min(pairs, default=("provider", inbound.provider_id))
        async with self._customer_lock(lock_key):
            # One read: stored already (a retry)? Else the customer's live interaction here.
            named = interaction is not None or conversation is not None
            look_on = None if named or self.capabilities.synchronous else self.channel
            earlier, live = await self.runtime.inbound_state(message_id, pairs, look_on)
            if earlier is not None and live is not None:
                return Received(
                    message=earlier.id,
                    interaction=live.id,
                    customer=live.customer_id,
                    new_interaction=False,
                    duplicate=True,
                )
            target = interaction if interaction is not None else (live.id if live is not None else None)
            if target is not None:
                stored_id = await self.runtime.add_message(target, message)
                owner = live if live is not None else await self.runtime.interaction(target)
                return Received(
                    message=stored_id,
                    interaction=target,
                    customer=owner.customer_id,
                    new_interaction=False,
                    duplicate=False,  # a retry was found by inbound_state, under the customer's lock
                )
            ack = await self.runtime.create_interaction(
                NewInteraction(
                    id=stable_id("i", self.channel, inbound.provider_id),
                    channel=self.channel,
                    queue=queue or self.setup.queue,
                    identities=inbound.identities,
                    display_name=inbound.display_name,
                    subject=inbound.subject,
                    message=message,
                    conversation=conversation,
                    attributes=dict(inbound.attributes),
                )
            )
            return Received(
                message=message_id,
                interaction=ack.interaction,
                customer=ack.customer,
                new_interaction=ack.created,
                duplicate=not ack.created,
            )

    def signal(self, interaction: str, payload: dict[str, Any]) -> None:
        """Something from the customer that is not a message and is not stored
        (``{"typing": true}``): it reaches the agent's stream now, or nowhere."""
        if self._on_signal is not None:
            self._on_signal(self.channel, interaction, payload)

    async def report(
        self,
        message_id: str,
        status: DeliveryStatus,
        *,
        provider_id: str | None = None,
        detail: str | None = None,
    ) -> Delivery:
        """How far an outbound message got; a repeated or late report changes nothing."""
        return await self.runtime.record_delivery(
            message_id, channel=self.channel, status=status, provider_id=provider_id, detail=detail
        )

    async def report_by_provider_id(
        self, provider_id: str, status: DeliveryStatus, *, detail: str | None = None
    ) -> Delivery | None:
        """A provider's status callback, which names its own id for the
        message; None when no message of this channel has that id."""
        known = await self.runtime.delivery_by_provider_id(self.channel, provider_id)
        if known is None:
            return None
        return await self.report(known.message_id, status, detail=detail)
