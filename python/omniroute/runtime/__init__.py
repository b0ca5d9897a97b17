"""The live engine: time, storage, the event bus and the customer, around the routing core."""

from omniroute.runtime.api import (
    Acknowledgement,
    AttachmentIn,
    IdentityIn,
    MessageIn,
    NewInteraction,
    RuntimeSettings,
)
from omniroute.runtime.bus import EventBus, SubscriberStats, Subscription
from omniroute.runtime.clock import Clock, ManualClock, SystemClock
from omniroute.runtime.events import Envelope, to_cloudevent
from omniroute.runtime.runtime import Runtime, RuntimeClosedError

__all__ = [
    "Acknowledgement",
    "AttachmentIn",
    "Clock",
    "Envelope",
    "EventBus",
    "IdentityIn",
    "ManualClock",
    "MessageIn",
    "NewInteraction",
    "Runtime",
    "RuntimeClosedError",
    "RuntimeSettings",
    "SubscriberStats",
    "Subscription",
    "SystemClock",
    "to_cloudevent",
]
