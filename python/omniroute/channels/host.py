"""Runs the configured channel connectors beside the runtime and sends agents' messages through them."""

from __future__ import annotations

import logging
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskStatus

from omniroute.channels.connector import ChannelConnector, ChannelKind, ChannelSetup, DeliveryError, Outbound
from omniroute.channels.gateway import ChannelGateway
from omniroute.errors import InvalidConfigError, from_validation
from omniroute.model import EngineConfig
from omniroute.runtime.events import Envelope, MessageAdded
from omniroute.runtime.runtime import Runtime

__all__ = ["ChannelHost", "build_connectors", "load_setups"]

log = logging.getLogger("omniroute.channels")

# The host's place in the event log is saved under this name.
CURSOR = "outbound"
# A send that fails with a retryable error is tried this many times in all,
# waiting this long before each retry.
ATTEMPTS = 3
RETRY_SECONDS = (0.2, 1.0)


class _File(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    connector: list[ChannelSetup] = []


def load_setups(path: str | Path) -> list[ChannelSetup]:
    """The ``[[connector]]`` tables of a TOML file, checked (errors name the field)."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InvalidConfigError(f"connectors: cannot read {path}: {e}") from e
    try:
        return msgspec.convert(raw, _File).connector
    except msgspec.ValidationError as e:
        raise from_validation(e, InvalidConfigError, where="connectors") from e


def build_connectors(
    setups: Sequence[ChannelSetup], kinds: dict[str, ChannelKind], config: EngineConfig | None
) -> list[ChannelConnector]:
    """A connector for each setup, its options checked against its kind's type;
    the channel and queue must be the configuration's, and a channel has one connector."""
    channels = {c.name for c in config.channels} if config is not None else None
    queues = {q.name for q in config.queues} if config is not None else None
    connectors: list[ChannelConnector] = []
    seen: set[str] = set()
    for n, setup in enumerate(setups):
        where = f"connector[{n}]"
        kind = kinds.get(setup.kind)
        if kind is None:
            known = ", ".join(sorted(kinds)) or "none installed"
            raise InvalidConfigError(f"{where}.kind: no channel kind {setup.kind!r} (installed: {known})")
        if channels is not None and setup.channel not in channels:
            raise InvalidConfigError(f"{where}.channel: {setup.channel!r} is not a configured channel")
        if queues is not None and setup.queue not in queues:
            raise InvalidConfigError(f"{where}.queue: {setup.queue!r} is not a configured queue")
        if setup.channel in seen:
            raise InvalidConfigError(f"{where}.channel: channel {setup.channel!r} has a connector already")
        seen.add(setup.channel)
        try:
            options = msgspec.convert(setup.options, kind.options)
        except msgspec.ValidationError as e:
            raise from_validation(e, InvalidConfigError, where=f"{where}.options") from e
        connectors.append(kind.connector(setup, options))
    return connectors


class ChannelHost:
    """Starts every connector inside one task group with the runtime, and
    follows the event log for agents' outbound messages: each goes out
    through the connector of its interaction's channel, and its delivery
    (sent, or failed and why) is stored together with the host's place in
    the log. After a crash the host reads on from that place, so every
    outbound message is sent; one whose delivery was stored is not sent again."""

    def __init__(
        self,
        runtime: Runtime,
        connectors: Sequence[ChannelConnector],
        *,
        on_signal: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.connectors = {c.setup.channel: c for c in connectors}
        self._on_signal = on_signal
        self.sent = 0
        self.failed = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            for connector in self.connectors.values():
                gateway = ChannelGateway(
                    self.runtime, connector.setup, connector.capabilities, on_signal=self._on_signal
                )
                await tg.start(_run_connector, connector, gateway)
            if self.connectors:
                tg.start_soon(self._outbound)
            task_status.started()

    async def signal(self, channel: str, interaction: str, payload: dict[str, Any]) -> bool:
        """An agent's signal (typing) to the customer, through the channel's
        connector; whether the channel shows it."""
        connector = self.connectors.get(channel)
        return connector is not None and await connector.signal(interaction, payload)

    async def _outbound(self) -> None:
        after = await self.runtime.channel_cursor(CURSOR)
        with self.runtime.subscribe(
            types=["message_added"], catch_up=True, after=after, name="channels"
        ) as events:
            async for envelope in events:
                await self._handle(envelope)

    async def _handle(self, envelope: Envelope) -> None:
        data = envelope.data
        if not isinstance(data, MessageAdded) or data.message.direction != "outbound":
            return
        message = data.message
        interaction = await self.runtime.interaction(message.interaction_id)
        connector = self.connectors.get(interaction.channel)
        if connector is None:
            return  # a channel without a connector: the agent's reply stays in the transcript
        cursor = (CURSOR, envelope.seq)
        known = await self.runtime.delivery(message.id)
        if known is not None:
            # Taken before a restart: reported already, not sent twice.
            return
        outbound = Outbound(
            message_id=message.id,
            interaction_id=interaction.id,
            customer_id=interaction.customer_id,
            author=message.author,
            to=await self.runtime.identities(interaction.customer_id),
            body=message.body,
            content_type=message.content_type,
            subject=interaction.subject,
            attributes=dict(interaction.attributes),
        )
        for attempt in range(ATTEMPTS):
            try:
                provider_id = await connector.send(outbound)
            except DeliveryError as e:
                if e.retry and attempt + 1 < ATTEMPTS:
                    await anyio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                    continue
                self.failed += 1
                await self.runtime.record_delivery(
                    message.id, channel=interaction.channel, status="failed", detail=str(e), cursor=cursor
                )
                return
            except Exception as e:
                self.failed += 1
                log.exception("channel %s: sending message %s failed", interaction.channel, message.id)
                await self.runtime.record_delivery(
                    message.id,
                    channel=interaction.channel,
                    status="failed",
                    detail=f"the connector failed: {e!r}",
                    cursor=cursor,
                )
                return
            self.sent += 1
            await self.runtime.record_delivery(
                message.id, channel=interaction.channel, status="sent", provider_id=provider_id, cursor=cursor
            )
            return


async def _run_connector(
    connector: ChannelConnector,
    gateway: ChannelGateway,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    try:
        await connector.run(gateway, task_status=task_status)
    except Exception:
        sys.stderr.write(
            f"omniroute: channel {connector.setup.channel!r}: the connector stopped with an error\n"
        )
        raise
