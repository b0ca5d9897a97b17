"""Channels as plugins: the connector contract, the gateway into the runtime, and the host that runs them."""

from omniroute.channels.connector import (
    Capabilities,
    ChannelConnector,
    ChannelKind,
    ChannelSetup,
    DeliveryError,
    Inbound,
    Outbound,
)
from omniroute.channels.gateway import ChannelGateway, Received, stable_id
from omniroute.channels.host import ChannelHost, build_connectors, load_setups

__all__ = [
    "Capabilities",
    "ChannelConnector",
    "ChannelGateway",
    "ChannelHost",
    "ChannelKind",
    "ChannelSetup",
    "DeliveryError",
    "Inbound",
    "Outbound",
    "Received",
    "build_connectors",
    "load_setups",
    "stable_id",
]
