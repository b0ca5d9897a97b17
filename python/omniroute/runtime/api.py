"""What callers hand the runtime: new interactions, messages, notes, and its settings."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from omniroute.metrics import MetricsConfig
from omniroute.model import AttributeValue, Condition, Name, PositiveSeconds, Priority, Seconds

__all__ = [
    "Acknowledgement",
    "AttachmentIn",
    "IdentityIn",
    "MessageIn",
    "NewInteraction",
    "RuntimeSettings",
]


class _In(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class IdentityIn(_In, frozen=True):
    """How the customer reached us: ``phone``, ``email``, ``chat``, ``whatsapp``,
    ``messenger``, ``instagram``, ``telegram`` or ``x``, and the address."""

    kind: str
    value: Annotated[str, Meta(max_length=512)]


class AttachmentIn(_In, frozen=True):
    """A file sent with a message: its metadata; the bytes stay where ``location`` says."""

    filename: Annotated[str, Meta(min_length=1, max_length=255)]
    content_type: Annotated[str, Meta(min_length=3, max_length=255, pattern=r"^[\w.+-]+/[\w.+-]+")]
    size: Annotated[int, Meta(ge=0)]
    sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
    location: Annotated[str, Meta(min_length=1, max_length=2048)]


class MessageIn(_In, frozen=True):
    body: str
    # Give an id to make storing idempotent (a channel's retried delivery):
    # the same id again on the same interaction is acknowledged, not stored twice.
    id: Name | None = None
    direction: Literal["inbound", "outbound", "internal"] = "inbound"
    # The agent's id for outbound and internal messages; the customer when omitted on inbound.
    author: Name | None = None
    content_type: Annotated[str, Meta(min_length=3, max_length=255)] = "text/plain"
    attachments: list[AttachmentIn] = []


class NewInteraction(_In, frozen=True):
    """A contact to route. The customer is found through ``identities`` (or
    named by ``customer``); the interaction joins the customer's open
    conversation unless ``conversation`` names one."""

    channel: Name
    queue: Name
    # Give an id to make creation idempotent: the same id again is acknowledged, not duplicated.
    id: Name | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    identities: list[IdentityIn] = []
    customer: Name | None = None
    conversation: Name | None = None
    display_name: Annotated[str, Meta(max_length=256)] | None = None
    priority: Priority = 0
    requires: Condition | None = None
    subject: Annotated[str, Meta(max_length=1024)] | None = None
    message: MessageIn | None = None
    attributes: dict[str, AttributeValue] = {}
    # Offer it first to the agent who last answered this customer, for the runtime's sticky_seconds.
    sticky: bool = True


class Acknowledgement(Struct, frozen=True, kw_only=True):
    """The interaction is stored: it will be routed, and survives a crash."""

    interaction: str
    customer: str
    conversation: str
    created: bool
    at: float


class RuntimeSettings(_In, frozen=True):
    """How the runtime behaves (``docs/configuration.md``)."""

    # Region for phone numbers written without a country code (ISO 3166, e.g. "GB").
    default_region: str | None = None
    max_message_bytes: Annotated[int, Meta(ge=1)] = 64 * 1024
    sticky_seconds: Seconds = 30.0
    conversation_idle_seconds: PositiveSeconds = 24 * 3600.0
    snapshot_every_seconds: PositiveSeconds = 60.0
    snapshot_every_batches: Annotated[int, Meta(ge=1)] = 20_000
    max_batch: Annotated[int, Meta(ge=1)] = 2048
    queue_size: Annotated[int, Meta(ge=1)] = 65536
    subscriber_buffer: Annotated[int, Meta(ge=1)] = 10_000
    # Timeline entries and messages kept decoded for the next context read
    # of a customer (``omniroute/store/kept.py``); 0 keeps none.
    context_kept_entries: Annotated[int, Meta(ge=0)] = 100_000
    metrics: MetricsConfig | None = None
