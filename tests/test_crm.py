"""CRM sync in a real server: the example plugin enriches customers and hears of finished work."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import anyio
import httpx
import pytest

from omniroute.errors import InvalidInputError
from omniroute.runtime import ManualClock, Runtime
from omniroute.store import open_store
from omniroute.testing import centre_config
from procs import serve_channels

CONFIG = """
[[channels]]
name = "email"
cost = 10

[[queues]]
name = "support"

[[agents]]
id = "ann"
queues = { support = 0 }
"""


def test_a_crm_plugin_enriches_the_customer_and_gets_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "crm.jsonl"
    # The example plugin's settings reach the server process through its environment.
    monkeypatch.setenv("OMNIROUTE_EXAMPLE_VIP_DOMAINS", "big.example")
    monkeypatch.setenv("OMNIROUTE_EXAMPLE_LOG", str(log))
    scopes = ["interactions:create", "interactions:read", "interactions:write", "customers:read", "work"]
    proc, port, token = serve_channels(tmp_path, CONFIG, "", scopes)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as api:
            vip = api.post(
                "/interactions",
                json={
                    "channel": "email",
                    "queue": "support",
                    "identities": [{"kind": "email", "value": "pat@big.example"}],
                },
            ).json()
            other = api.post(
                "/interactions",
                json={
                    "channel": "email",
                    "queue": "support",
                    "identities": [{"kind": "email", "value": "sam@small.example"}],
                },
            ).json()
            for _ in range(300):
                if api.get(f"/customers/{vip['customer']}").json()["attributes"].get("tier") == "vip":
                    break
                time.sleep(0.02)
            assert api.get(f"/customers/{vip['customer']}").json()["attributes"] == {"tier": "vip"}
            assert api.get(f"/customers/{other['customer']}").json()["attributes"] == {}

            offer = next(
                o["offer"] for o in api.get("/offers").json() if o["interaction"] == vip["interaction"]
            )
            assert api.post(f"/offers/{offer}/accept").status_code == 204
            done = api.post(
                f"/tasks/{vip['interaction']}/complete",
                json={"disposition": "resolved", "note": "Upgraded the plan"},
            )
            assert done.status_code == 204
            for _ in range(300):
                if log.exists() and log.read_text().strip():
                    break
                time.sleep(0.02)
            (line,) = [json.loads(x) for x in log.read_text().splitlines()]
            assert line == {
                "interaction": vip["interaction"],
                "customer": vip["customer"],
                "agent": "ann",
                "disposition": "resolved",
                "notes": ["Upgraded the plan"],
            }
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "log").read_text()[-3000:]


@pytest.mark.anyio
async def test_customer_attributes_are_added_checked_and_kept(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/attributes.db")
    async with Runtime.open(store, centre_config(), clock=ManualClock(1_700_000_000.0)) as rt:
        from omniroute.runtime import NewInteraction
        from omniroute.runtime.api import IdentityIn

        ack = await rt.create_interaction(
            NewInteraction(
                channel="test", queue="support", identities=[IdentityIn(kind="email", value="a@b.example")]
            )
        )
        first = await rt.update_customer(ack.customer, {"tier": "gold", "score": 7})
        assert first.attributes == {"tier": "gold", "score": 7}
        second = await rt.update_customer(ack.customer, {"tier": "vip"})
        assert second.attributes == {"tier": "vip", "score": 7}
        assert (await rt.customer(ack.customer)).attributes == {"tier": "vip", "score": 7}
        with pytest.raises(
            InvalidInputError, match=r"attributes\.tier: expected a string, a number or true/false"
        ):
            await rt.update_customer(ack.customer, {"tier": ["a", "list"]})
        events = [e.type for e in await rt.events(0, limit=1000)]
        assert events.count("customer_updated") == 2
        await anyio.sleep(0)
