"""An example third-party omniroute plugin, in its own distribution.

- ``crm_lookup``: customers whose e-mail domain is listed in
  ``OMNIROUTE_EXAMPLE_VIP_DOMAINS`` (comma-separated) are ``{"tier": "vip"}``.
- ``crm_write_back``: each finished interaction is appended as one JSON line
  to the file ``OMNIROUTE_EXAMPLE_LOG`` names (nothing without it).
- ``register_dialer_modes``: ``cautious``, progressive dialling at half the
  campaign's ratio.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

from omniroute import hookimpl
from omniroute.dialers import DialerMode, DialerState
from omniroute.store import Customer, IdentityRecord, Interaction, Note


@hookimpl
def crm_lookup(customer: Customer, identities: list[IdentityRecord]) -> dict[str, Any] | None:
    # ``interaction`` is not named: pluggy passes a hook only the arguments it asks for.
    domains = {
        d.strip().lower() for d in os.environ.get("OMNIROUTE_EXAMPLE_VIP_DOMAINS", "").split(",") if d.strip()
    }
    for identity in identities:
        if identity.kind == "email" and identity.value.rsplit("@", 1)[-1] in domains:
            return {"tier": "vip"}
    return None


@hookimpl
def crm_write_back(interaction: Interaction, notes: list[Note]) -> None:
    path = os.environ.get("OMNIROUTE_EXAMPLE_LOG")
    if not path:
        return
    line = {
        "interaction": interaction.id,
        "customer": interaction.customer_id,
        "agent": interaction.agent,
        "disposition": interaction.disposition,
        "notes": [n.body for n in notes],
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _cautious(state: DialerState) -> int:
    return max(0, math.floor(state.agents_available * state.ratio / 2) - state.calls_in_progress)


@hookimpl
def register_dialer_modes(register: Callable[[DialerMode], None]) -> None:
    register(DialerMode("cautious", "progressive dialling at half the campaign's ratio", _cautious))
