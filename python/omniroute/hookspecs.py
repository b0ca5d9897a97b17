"""The hooks a plugin implements: channel connectors, CRM sync and dialer modes.

A plugin is a module (or any object) with functions marked
``@omniroute.hookimpl`` whose names are the hooks below; a distribution
makes it known through the ``omniroute`` entry-point group
(``docs/plugins.md``). Hooks only ever gain arguments, and pluggy passes a
hook implementation only the arguments it names, so a plugin written today
keeps working when a hook grows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from omniroute.channels.connector import ChannelKind
    from omniroute.dialers import DialerMode
    from omniroute.store import Customer, IdentityRecord, Interaction, Note

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "omniroute"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    """Make channel connector kinds known: call ``register`` once per kind.

    A kind (``ChannelKind``) names itself (``"webhook"``, ``"email"``), the
    msgspec type of its options, and the factory that builds a connector for
    one configured channel. ``omniroute serve --connectors FILE`` builds the
    connectors the file asks for; each runs inside the runtime's task group.

    :param register: called with each ``ChannelKind`` this plugin provides.

    .. versionadded:: 0.1
    """


@hookspec
def register_dialer_modes(register: Callable[[DialerMode], None]) -> None:
    """Make outbound dialer modes known: call ``register`` once per mode.

    A mode decides how many numbers to dial now from the campaign's state
    (agents free, calls in progress, the recent answer rate and its own
    ratio); the built-in ``preview`` and ``progressive`` modes are registered
    through this hook too.

    :param register: called with each ``DialerMode`` this plugin provides.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def crm_lookup(
    customer: Customer, identities: list[IdentityRecord], interaction: Interaction
) -> dict[str, Any] | None:
    """Look the customer up in a CRM when a contact arrives, and return the
    attributes to add to what omniroute knows (a tier, an account number,
    the CRM's own id), or None when this plugin does not know them.

    Stops at the first non-None result.

    :param customer: the customer the contact resolved to.
    :param identities: every identity known for the customer.
    :param interaction: the contact that just arrived.

    .. versionadded:: 0.1
    """


@hookspec
def crm_write_back(interaction: Interaction, notes: list[Note]) -> None:
    """Write the outcome of a finished interaction back to a CRM: its
    disposition, outcome, agent and times, and the notes taken on it.

    Every plugin that implements it is called (one CRM failing does not stop
    the next; the error is reported and counted).

    :param interaction: the interaction, completed.
    :param notes: the notes on it, oldest first.

    .. versionadded:: 0.1
    """


# Every hook, for the meta-test that each one has a test.
HOOKS: tuple[Callable[..., Any], ...] = (register_channels, register_dialer_modes, crm_lookup, crm_write_back)
