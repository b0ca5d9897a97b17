"""CRM sync: the CRM plugins hear of each new contact's customer, and of each finished interaction."""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskStatus

from omniroute.errors import OmnirouteError
from omniroute.model import TaskCompleted
from omniroute.plugins import Plugins
from omniroute.runtime.events import Envelope, InteractionCreated
from omniroute.runtime.runtime import Runtime

__all__ = ["CrmSync"]

log = logging.getLogger("omniroute.crm")


class CrmSync:
    """Follows the event log beside the runtime: on ``interaction_created``
    it asks ``crm_lookup`` about the customer and stores the attributes the
    CRM returns on the customer; on ``task_completed`` it hands the
    interaction and its notes to ``crm_write_back``. Plugins run in worker
    threads (a CRM answers over the network), so routing never waits for a
    CRM; a CRM that fails is logged and counted, and the next event goes on."""

    def __init__(self, runtime: Runtime, plugins: Plugins) -> None:
        self.runtime = runtime
        self.plugins = plugins
        self.enriched = 0
        self.written_back = 0
        self.failures = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        types = ["interaction_created", "task_completed"]
        with self.runtime.subscribe(types=types, catch_up=True, name="crm") as events:
            task_status.started()
            async for envelope in events:
                try:
                    await self._handle(envelope)
                except OmnirouteError as e:
                    self.failures += 1
                    log.warning("crm: event %s: %s", envelope.seq, e)
                except Exception:
                    self.failures += 1
                    log.exception("crm: event %s: a CRM plugin failed", envelope.seq)

    async def _handle(self, envelope: Envelope) -> None:
        data = envelope.data
        if isinstance(data, InteractionCreated):
            interaction = data.interaction
            customer = await self.runtime.customer(interaction.customer_id)
            identities = await self.runtime.identities(customer.id)
            found = await anyio.to_thread.run_sync(self.plugins.crm_lookup, customer, identities, interaction)
            if found:
                await self.runtime.update_customer(customer.id, found)
                self.enriched += 1
        elif isinstance(data, TaskCompleted):
            interaction = await self.runtime.interaction(data.task)
            notes = await self.runtime.interaction_notes(data.task)
            failed = await anyio.to_thread.run_sync(self.plugins.crm_write_back, interaction, notes)
            self.failures += len(failed)
            self.written_back += 1
