"""Every state change as an event: an envelope (in the spirit of CloudEvents) around typed data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import Struct

from omniroute.model import Output
from omniroute.store.records import (
    Attachment,
    Conversation,
    Customer,
    Delivery,
    IdentityRecord,
    Interaction,
    Merge,
    Message,
    Note,
    StoredEvent,
)
from omniroute.store.sql import StoreError

__all__ = [
    "ConfigApplied",
    "ConsultSent",
    "ConversationClosed",
    "ConversationOpened",
    "CustomerCreated",
    "CustomerUpdated",
    "CustomersMerged",
    "DeliveryUpdated",
    "Envelope",
    "EventData",
    "IdentityAdded",
    "InteractionCreated",
    "InteractionUpdated",
    "MergeUndone",
    "MessageAdded",
    "NoteAdded",
    "RuntimeEvent",
    "TaskHeld",
    "TaskResumed",
    "decode_data",
    "encode_data",
    "envelope_of",
    "iso_time",
    "to_cloudevent",
]


class _RuntimeEvent(Struct, frozen=True, kw_only=True, tag_field="type"):
    at: float


class InteractionCreated(_RuntimeEvent, tag="interaction_created", frozen=True):
    interaction: Interaction


class InteractionUpdated(_RuntimeEvent, tag="interaction_updated", frozen=True):
    """Disposition and outcome given at completion."""

    interaction: str
    disposition: str | None
    outcome: str | None


class CustomerCreated(_RuntimeEvent, tag="customer_created", frozen=True):
    customer: Customer


class CustomerUpdated(_RuntimeEvent, tag="customer_updated", frozen=True):
    """Attributes added or changed (a CRM's, say); ``customer`` is the record after."""

    customer: Customer


class IdentityAdded(_RuntimeEvent, tag="identity_added", frozen=True):
    identity: IdentityRecord


class ConversationOpened(_RuntimeEvent, tag="conversation_opened", frozen=True):
    conversation: Conversation


class ConversationClosed(_RuntimeEvent, tag="conversation_closed", frozen=True):
    conversation: str


class MessageAdded(_RuntimeEvent, tag="message_added", frozen=True):
    message: Message
    attachments: list[Attachment] = []


class NoteAdded(_RuntimeEvent, tag="note_added", frozen=True):
    note: Note


class CustomersMerged(_RuntimeEvent, tag="customers_merged", frozen=True):
    merge: Merge


class MergeUndone(_RuntimeEvent, tag="merge_undone", frozen=True):
    merge: Merge


class ConfigApplied(_RuntimeEvent, tag="config_applied", frozen=True):
    channels: list[str]
    queues: list[str]
    agents: list[str]
    removed_agents: list[str]


class TaskHeld(_RuntimeEvent, tag="task_held", frozen=True):
    """The agent put the customer on hold."""

    task: str
    agent: str


class TaskResumed(_RuntimeEvent, tag="task_resumed", frozen=True):
    """The hold ended: the agent took the customer back, or the task was
    completed, transferred or ended while on hold (``seconds``: this hold)."""

    task: str
    agent: str
    seconds: float


class DeliveryUpdated(_RuntimeEvent, tag="delivery_updated", frozen=True):
    """A channel reported how far an outbound message got (sent, delivered, read, failed)."""

    delivery: Delivery
    interaction: str


class ConsultSent(_RuntimeEvent, tag="consult_sent", frozen=True):
    """An agent's message to a colleague (internal chat), about a task or not."""

    id: str
    sender: str
    to: str
    body: str
    task: str | None = None


RuntimeEvent = (
    InteractionCreated
    | InteractionUpdated
    | CustomerCreated
    | CustomerUpdated
    | IdentityAdded
    | ConversationOpened
    | ConversationClosed
    | MessageAdded
    | NoteAdded
    | CustomersMerged
    | MergeUndone
    | ConfigApplied
    | TaskHeld
    | TaskResumed
    | ConsultSent
    | DeliveryUpdated
)
EventData = Output | RuntimeEvent

_RUNTIME_TAGS = frozenset(cls.__struct_config__.tag for cls in RuntimeEvent.__args__)
_encoder = msgspec.msgpack.Encoder()
_output_decoder: msgspec.msgpack.Decoder[Output] = msgspec.msgpack.Decoder(Output)
_runtime_decoder: msgspec.msgpack.Decoder[RuntimeEvent] = msgspec.msgpack.Decoder(RuntimeEvent)


class Envelope(Struct, frozen=True, kw_only=True, gc=False):
    """One event: ``seq`` orders the log (and is the event's id), ``type``
    names what happened, ``subject`` what it happened to (a task, an agent,
    a customer), ``data`` the typed details."""

    seq: int
    type: str
    time: float
    subject: str
    data: EventData


def iso_time(seconds: float) -> str:
    """``2023-11-14T22:13:20.000000Z``: RFC 3339 in UTC, always with microseconds."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope_of(stored: StoredEvent) -> Envelope:
    """A stored event with its data typed again."""
    try:
        data = decode_data(stored.type, stored.data)
    except msgspec.DecodeError as e:
        raise StoreError(f"events: event {stored.seq} ({stored.type}) cannot be decoded: {e}") from e
    return Envelope(seq=stored.seq, type=stored.type, time=stored.time, subject=stored.subject, data=data)


# An event's data as the log stores it (MessagePack).
encode_data: Callable[[EventData], bytes] = _encoder.encode


def decode_data(type_: str, data: bytes) -> EventData:
    """The typed data of a stored event."""
    if type_ in _RUNTIME_TAGS:
        return _runtime_decoder.decode(data)
    return _output_decoder.decode(data)


def _plain(value: Any) -> Any:
    """Structs as JSON objects (the engine's outputs travel as arrays)."""
    if isinstance(value, Struct):
        out = {}
        tag = value.__struct_config__.tag
        if tag is not None:
            out[value.__struct_config__.tag_field or "type"] = tag
        for name in value.__struct_fields__:
            out[name] = _plain(getattr(value, name))
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_cloudevent(envelope: Envelope, *, source: str = "omniroute") -> dict[str, Any]:
    """The event as a CloudEvents 1.0 JSON object."""
    data = _plain(envelope.data)
    data.pop("type", None)
    return {
        "specversion": "1.0",
        "id": str(envelope.seq),
        "source": source,
        "type": f"omniroute.{envelope.type}",
        "time": iso_time(envelope.time),
        "subject": envelope.subject,
        "datacontenttype": "application/json",
        "data": data,
    }
