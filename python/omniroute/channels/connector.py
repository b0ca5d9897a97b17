"""What a channel connector is: the class a channel plugin subclasses, and the messages it passes."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import anyio
from anyio.abc import TaskStatus
from msgspec import Meta, Struct

from omniroute.runtime.api import AttachmentIn, IdentityIn

if TYPE_CHECKING:
    from litestar.handlers import BaseRouteHandler

    from omniroute.channels.gateway import ChannelGateway
    from omniroute.store import IdentityRecord

__all__ = [
    "Capabilities",
    "ChannelConnector",
    "ChannelKind",
    "ChannelSetup",
    "DeliveryError",
    "Inbound",
    "Outbound",
]

Name = Annotated[str, Meta(min_length=1, max_length=256)]


class Capabilities(Struct, frozen=True, kw_only=True):
    """What a channel can do, declared by its connector."""

    # A live conversation (chat, voice) whose interaction ends with the
    # session; otherwise asynchronous (e-mail, SMS): the customer's next
    # message joins their live interaction on the channel.
    synchronous: bool
    rich_media: bool = False
    typing: bool = False


class ChannelSetup(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[[connector]]`` of ``omniroute serve --connectors FILE``."""

    # The registered kind that builds it ("webhook", "email", ...).
    kind: Name
    # The engine's channel its interactions are on (one of the configuration's channels).
    channel: Name
    # Where a new contact waits.
    queue: Name
    # The kind's own options, checked against its options type.
    options: dict[str, Any] = {}


class Inbound(Struct, frozen=True, kw_only=True):
    """A message from a customer as a connector read it off the wire."""

    # The provider's id of this message: a retried delivery carries the same one.
    provider_id: Annotated[str, Meta(min_length=1, max_length=1024)]
    identities: list[IdentityIn]
    body: str
    content_type: Annotated[str, Meta(min_length=3, max_length=255)] = "text/plain"
    display_name: Annotated[str, Meta(max_length=256)] | None = None
    subject: Annotated[str, Meta(max_length=1024)] | None = None
    attachments: list[AttachmentIn] = []
    # Kept on a new interaction it opens (an e-mail's Message-ID, say, to thread replies).
    attributes: dict[str, str] = {}


class Outbound(Struct, frozen=True, kw_only=True):
    """An agent's message for a connector to send."""

    message_id: str
    interaction_id: str
    customer_id: str
    # The agent who wrote it (or the connector's own name for an automatic message).
    author: str
    # Every identity of the customer; the connector picks the kind it speaks.
    to: list[IdentityRecord]
    body: str
    content_type: str = "text/plain"
    # The interaction's subject and attributes (what the connector kept when it opened it).
    subject: str | None = None
    attributes: dict[str, Any] = {}


class DeliveryError(Exception):
    """A send failed; ``retry``: it may work if tried again (a timeout, a 5xx)."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class ChannelConnector(abc.ABC):
    """One configured channel: it turns what arrives into interactions and
    messages through its gateway, sends agents' messages, and reports how far
    they got. Built by its kind with the setup and the options (already
    checked against the kind's options type)."""

    capabilities: ClassVar[Capabilities]

    def __init__(self, setup: ChannelSetup, options: Any) -> None:
        self.setup = setup
        self.options = options
        self._gateway: ChannelGateway | None = None

    @property
    def gateway(self) -> ChannelGateway:
        """The runtime, as this channel may use it (set when the connector starts)."""
        if self._gateway is None:
            raise RuntimeError(f"channel {self.setup.channel!r}: the connector has not started")
        return self._gateway

    def routes(self) -> list[BaseRouteHandler]:
        """HTTP routes (webhooks) the server mounts under ``/api/v1/channels/{channel}``.
        They are public: each checks the caller itself (a signature)."""
        return []

    async def run(
        self, gateway: ChannelGateway, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until cancelled, inside the runtime's task group: servers that
        listen (SMTP, SIP) start here and call ``task_status.started()`` once
        they listen. The default only keeps the gateway (webhooks arrive over
        ``routes()``)."""
        self._gateway = gateway
        task_status.started()
        await anyio.sleep_forever()

    async def signal(self, interaction: str, payload: dict[str, Any]) -> bool:
        """Something passing from the agent to the customer that is not a
        message and is not stored (``{"typing": true}``). Returns whether the
        channel shows it; the default shows nothing."""
        return False

    @abc.abstractmethod
    async def send(self, message: Outbound) -> str | None:
        """Send an agent's message; return the provider's id for it (its
        status callbacks name it), or None. Raise ``DeliveryError`` when it
        cannot be sent."""


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """What ``register_channels`` registers: a kind of connector."""

    name: str
    connector: type[ChannelConnector]
    # The msgspec type the ``options`` table is checked against.
    options: type[Struct]
    description: str
