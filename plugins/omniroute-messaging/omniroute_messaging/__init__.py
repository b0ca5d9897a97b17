"""omniroute channels: SMS through Twilio Messaging, and WhatsApp through Meta's WhatsApp Cloud API."""

from __future__ import annotations

from collections.abc import Callable

from omniroute import hookimpl
from omniroute.channels import ChannelKind
from omniroute_messaging.twilio import TWILIO, TwilioConnector, TwilioOptions, twilio_signature
from omniroute_messaging.whatsapp import WHATSAPP, WhatsAppConnector, WhatsAppOptions, hub_signature

__all__ = [
    "TWILIO",
    "WHATSAPP",
    "TwilioConnector",
    "TwilioOptions",
    "WhatsAppConnector",
    "WhatsAppOptions",
    "hub_signature",
    "twilio_signature",
]


@hookimpl
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    register(TWILIO)
    register(WHATSAPP)
