"""The plugin manager: built-in and installed plugins, and the one place hooks are called."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from omniroute import hookspecs
from omniroute.errors import InvalidConfigError
from omniroute.hookspecs import PROJECT, hookimpl

if TYPE_CHECKING:
    from omniroute.channels.connector import ChannelKind
    from omniroute.dialers import DialerMode
    from omniroute.store import Customer, IdentityRecord, Interaction, Note

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "PluginInfo", "Plugins", "hookimpl"]

log = logging.getLogger("omniroute.plugins")

ENTRY_POINT_GROUP = "omniroute"
# What omniroute itself provides, registered like any installed plugin.
DEFAULT_PLUGINS = ("omniroute.dialers",)
# Comma-separated plugin names: only these installed plugins load (built-in ones always may) ...
LOAD_VARIABLE = "OMNIROUTE_LOAD_PLUGINS"
# ... and these never do (built-in ones included).
DISABLE_VARIABLE = "OMNIROUTE_DISABLE_PLUGINS"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    # The distribution that provides it and its version (None for built-in ones).
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    built_in: bool


@dataclass(slots=True)
class _Loaded:
    plugin: object
    info: PluginInfo


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class Plugins:
    """Which plugins are active, and the typed calls into them. Nothing
    else in omniroute calls ``pm.hook``."""

    def __init__(self, *, installed: bool = True, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        only = _names(env.get(LOAD_VARIABLE))
        disabled = _names(env.get(DISABLE_VARIABLE)) or set()
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._loaded: dict[str, _Loaded] = {}
        for module_name in DEFAULT_PLUGINS:
            if module_name not in disabled:
                self._register(importlib.import_module(module_name), module_name, None, None, built_in=True)
        if installed:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if (only is not None and ep.name not in only) or ep.name in disabled:
                    continue
                dist = ep.dist
                self._register(
                    ep.load(),
                    ep.name,
                    dist.metadata["Name"] if dist is not None else None,
                    dist.version if dist is not None else None,
                    built_in=False,
                )
        # A hook implementation whose name is not a hook (a typo) is an error, not ignored.
        self.pm.check_pending()

    def _register(
        self, plugin: object, name: str, distribution: str | None, version: str | None, *, built_in: bool
    ) -> None:
        if self.pm.get_plugin(name) is not None:
            raise InvalidConfigError(f"plugins: two plugins are named {name!r}")
        self.pm.register(plugin, name=name)
        hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))
        self._loaded[name] = _Loaded(plugin, PluginInfo(name, distribution, version, hooks, built_in))

    def register(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin by hand (a test's, or an application's own)."""
        chosen = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
        self._register(plugin, chosen, None, None, built_in=False)
        self.pm.check_pending()

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._loaded.pop(name, None)

    def describe(self) -> list[PluginInfo]:
        """Every active plugin, built-in ones first, with its distribution, version and hooks."""
        return sorted(
            (loaded.info for loaded in self._loaded.values()), key=lambda i: (not i.built_in, i.name)
        )

    def _collect(self, hook: Callable[..., Any], what: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def register(item: Any) -> None:
            if item.name in found:
                raise InvalidConfigError(f"plugins: two {what} are named {item.name!r}")
            found[item.name] = item

        hook(register=register)
        return found

    def channel_kinds(self) -> dict[str, ChannelKind]:
        """Every registered kind of channel connector, by name."""
        return self._collect(self.pm.hook.register_channels, "channel kinds")

    def dialer_modes(self) -> dict[str, DialerMode]:
        """Every registered dialer mode, by name."""
        return self._collect(self.pm.hook.register_dialer_modes, "dialer modes")

    def has_crm(self) -> bool:
        """Whether any plugin implements a CRM hook (then CRM sync runs)."""
        return bool(self.pm.hook.crm_lookup.get_hookimpls() or self.pm.hook.crm_write_back.get_hookimpls())

    def crm_lookup(
        self, customer: Customer, identities: list[IdentityRecord], interaction: Interaction
    ) -> dict[str, Any] | None:
        """The first CRM's attributes for the customer, or None when no CRM knows them."""
        found: dict[str, Any] | None = self.pm.hook.crm_lookup(
            customer=customer, identities=identities, interaction=interaction
        )
        return found

    def crm_write_back(self, interaction: Interaction, notes: list[Note]) -> list[str]:
        """Every CRM's write-back, each on its own: one failing does not stop
        the next. Returns what failed, one line each (plugin: error)."""
        failures = []
        for impl in self.pm.hook.crm_write_back.get_hookimpls():
            try:
                # Only the arguments the implementation names (hooks only gain arguments).
                given = {"interaction": interaction, "notes": notes}
                impl.function(**{name: given[name] for name in impl.argnames})
            except Exception as e:
                log.warning("plugin %s: crm_write_back failed: %r", impl.plugin_name, e)
                failures.append(f"{impl.plugin_name}: {e!r}")
        return failures
