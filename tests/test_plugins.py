"""The plugin contract: discovery, the environment's choices, and every hook through the one wrapper."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from omniroute import hookimpl, hookspecs
from omniroute.channels import ChannelKind
from omniroute.dialers import DialerMode, DialerState, decide
from omniroute.errors import InvalidConfigError, InvalidInputError
from omniroute.plugins import Plugins
from omniroute.store import Customer, IdentityRecord, Interaction, Note
from omniroute_webhook import KIND as WEBHOOK

T0 = 1_700_000_000.0
CUSTOMER = Customer(id="c1", created_at=T0)
VIP = [IdentityRecord(kind="email", value="pat@big.example", customer_id="c1", created_at=T0)]
INTERACTION = Interaction(
    id="i1",
    conversation_id="v1",
    customer_id="c1",
    channel="email",
    direction="inbound",
    queue="support",
    status="completed",
    agent="ann",
    created_at=T0,
    disposition="resolved",
)
NOTES = [Note(id="n1", customer_id="c1", interaction_id="i1", author="ann", at=T0 + 5, body="Refunded")]


# ----- discovery -----


def test_built_in_and_installed_plugins_are_found_with_distribution_version_and_hooks() -> None:
    infos = {i.name: i for i in Plugins(environ={}).describe()}
    assert infos["omniroute.dialers"].built_in
    assert infos["omniroute.dialers"].hooks == ("register_dialer_modes",)
    example = infos["example"]
    assert (example.distribution, example.version, example.built_in) == ("omniroute-example", "0.3.1", False)
    assert example.hooks == ("crm_lookup", "crm_write_back", "register_dialer_modes")
    assert infos["webhook"].hooks == ("register_channels",)
    assert infos["webhook"].distribution == "omniroute-webhook"


def test_the_command_lists_the_plugins_and_what_they_register() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "omniroute", "plugins", "--json"], capture_output=True, text=True, check=True
    )
    document = json.loads(listed.stdout)
    names = [p["name"] for p in document["plugins"]]
    assert names[0] == "omniroute.dialers"
    assert {"example", "webhook"} <= set(names)
    assert {"webhook", "twilio", "whatsapp", "email", "webchat", "sip"} <= set(document["channel_kinds"])
    assert {"preview", "progressive", "cautious"} <= set(document["dialer_modes"])
    table = subprocess.run(
        [sys.executable, "-m", "omniroute", "plugins"], capture_output=True, text=True, check=True
    )
    assert "omniroute-example 0.3.1" in table.stdout


def test_the_environment_chooses_which_plugins_load() -> None:
    only = Plugins(environ={"OMNIROUTE_LOAD_PLUGINS": "example"})
    assert {i.name for i in only.describe()} == {"omniroute.dialers", "example"}
    assert only.channel_kinds() == {}
    off = Plugins(environ={"OMNIROUTE_DISABLE_PLUGINS": "example, omniroute.dialers"})
    assert {i.name for i in off.describe()} == {"webhook", "messaging", "email", "webchat", "sip"}
    assert off.dialer_modes() == {}


def test_a_hook_implementation_with_a_misspelt_name_is_an_error(omniroute_plugins: Plugins) -> None:
    class Typo:
        @hookimpl
        def register_channel(self, register: Callable[[ChannelKind], None]) -> None:  # not a hook
            raise AssertionError("never called")

    with pytest.raises(pluggy.PluginValidationError, match="register_channel"):
        omniroute_plugins.register(Typo(), "typo")


# ----- each hook -----


def test_hook_register_channels_collects_kinds_and_refuses_two_of_one_name(
    omniroute_plugins: Plugins,
) -> None:
    class Channels:
        @hookimpl
        def register_channels(self, register: Callable[[ChannelKind], None]) -> None:
            register(WEBHOOK)

    omniroute_plugins.register(Channels(), "channels")
    assert omniroute_plugins.channel_kinds() == {"webhook": WEBHOOK}
    omniroute_plugins.register(Channels(), "again")
    with pytest.raises(InvalidConfigError, match="two channel kinds are named 'webhook'"):
        omniroute_plugins.channel_kinds()


def test_hook_register_dialer_modes_and_the_built_in_modes(omniroute_plugins: Plugins) -> None:
    modes = omniroute_plugins.dialer_modes()
    assert set(modes) == {"preview", "progressive"}
    state = DialerState(agents_available=4, calls_in_progress=1, pending_numbers=100, ratio=1.5)
    assert decide(modes["preview"], state) == 0
    assert decide(modes["progressive"], state) == 5  # floor(4 x 1.5) - 1
    assert (
        decide(modes["progressive"], DialerState(agents_available=4, calls_in_progress=1, pending_numbers=2))
        == 2
    )
    installed = Plugins(environ={})
    assert decide(installed.dialer_modes()["cautious"], state) == 2  # floor(4 x 0.75) - 1
    with pytest.raises(InvalidInputError, match=r"state\.ratio"):
        decide(
            modes["progressive"],
            DialerState(agents_available=1, calls_in_progress=0, pending_numbers=1, ratio=0),
        )
    with pytest.raises(InvalidInputError, match=r"state\.agents_available"):
        decide(modes["progressive"], DialerState(agents_available=-1, calls_in_progress=0, pending_numbers=1))
    broken = DialerMode("broken", "answers nonsense", lambda s: -3)
    with pytest.raises(InvalidInputError, match="dialer mode 'broken': decided -3"):
        decide(broken, state)


def test_hook_crm_lookup_stops_at_the_first_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIROUTE_EXAMPLE_VIP_DOMAINS", "big.example")
    plugins = Plugins(environ={})
    assert plugins.crm_lookup(CUSTOMER, VIP, INTERACTION) == {"tier": "vip"}
    other = [IdentityRecord(kind="email", value="sam@small.example", customer_id="c1", created_at=T0)]
    assert plugins.crm_lookup(CUSTOMER, other, INTERACTION) is None

    class Crm:
        @hookimpl
        def crm_lookup(
            self, customer: Customer, identities: list[IdentityRecord], interaction: Interaction
        ) -> dict[str, Any] | None:
            return {"account": "A-1", "channel": interaction.channel}

    plugins.register(Crm(), "crm")
    # The plugin registered last is asked first, and its answer is the only one.
    assert plugins.crm_lookup(CUSTOMER, VIP, INTERACTION) == {"account": "A-1", "channel": "email"}


def test_hook_crm_write_back_reaches_every_crm_even_when_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "crm.jsonl"
    monkeypatch.setenv("OMNIROUTE_EXAMPLE_LOG", str(log))
    plugins = Plugins(environ={})

    class Down:
        @hookimpl
        def crm_write_back(self, interaction: Interaction, notes: list[Note]) -> None:
            raise ConnectionError("crm.example is down")

    heard: list[str] = []

    class Brief:
        # Names only the argument it wants: pluggy's promise, kept by the wrapper too.
        @hookimpl
        def crm_write_back(self, interaction: Interaction) -> None:
            heard.append(interaction.id)

    plugins.register(Down(), "down")
    plugins.register(Brief(), "brief")
    failures = plugins.crm_write_back(INTERACTION, NOTES)
    assert heard == ["i1"]
    assert failures == ["down: ConnectionError('crm.example is down')"]
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {
            "interaction": "i1",
            "customer": "c1",
            "agent": "ann",
            "disposition": "resolved",
            "notes": ["Refunded"],
        }
    ]


# ----- the meta-test -----


def test_every_hook_has_a_test() -> None:
    """A new hook needs a ``test_hook_<name>...`` here (datasette's rule)."""
    tested = {name for name, _ in inspect.getmembers(sys.modules[__name__], inspect.isfunction)}
    for hook in hookspecs.HOOKS:
        assert any(t.startswith(f"test_hook_{hook.__name__}") for t in tested), hook.__name__
    # And HOOKS is every hook there is.
    specs = {
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, "omniroute_spec")
    }
    assert specs == {h.__name__ for h in hookspecs.HOOKS}
