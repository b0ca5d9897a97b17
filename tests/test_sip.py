"""Voice over SIP against sipp (sip-tester) on loopback: queueing, redirect, menu, abandonment, load."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from procs import SIP_SCENARIOS, free_port, serve_channels, sipp

CONFIG = """
[[channels]]
name = "voice"
cost = 60

[[channels]]
name = "night"
cost = 60

[[queues]]
name = "support"

[[queues]]
name = "billing"

[[agents]]
id = "ann"
queues = { support = 0 }
available = false
"""


class Centre:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.voice_port = free_port(socket.SOCK_DGRAM)
        self.night_port = free_port(socket.SOCK_DGRAM)
        connectors = f"""
[[connector]]
kind = "sip"
channel = "voice"
queue = "support"
[connector.options]
listen_port = {self.voice_port}
agent_uris = {{ ann = "sip:ann@pbx.example" }}
menu = {{ "2" = "billing" }}

[[connector]]
kind = "sip"
channel = "night"
queue = "support"
[connector.options]
listen_port = {self.night_port}
open_hours = {{ days = [] }}
"""
        scopes = ["interactions:read", "customers:read", "events:read", "work", "agents:write"]
        self.proc, port, token = serve_channels(workdir, CONFIG, connectors, scopes)
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

    def sipp(self, scenario: str, port: int, *args: str, transport: str = "u1") -> subprocess.Popen[bytes]:
        """sipp as a caller (UAC) against one of the connectors, in the background."""
        name = f"{scenario}-{transport}-{time.monotonic_ns()}"
        return subprocess.Popen(
            [
                sipp(),
                "-sf",
                str(SIP_SCENARIOS / f"{scenario}.xml"),
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port(socket.SOCK_STREAM if transport == "t1" else socket.SOCK_DGRAM)),
                "-t",
                transport,
                "-nostdin",
                "-timeout",
                "120s",
                "-timeout_error",
                "-trace_err",
                "-error_file",
                str(self.workdir / f"{name}.errors"),
                *args,
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.workdir,
        )

    def finished(self, caller: subprocess.Popen[bytes], timeout: float = 120) -> None:
        _, err = caller.communicate(timeout=timeout)
        errors = "\n".join(p.read_text()[-2000:] for p in self.workdir.glob("*.errors"))
        assert caller.returncode == 0, (caller.returncode, err.decode()[-2000:], errors)

    def interactions(self, channel: str) -> list[dict[str, Any]]:
        """Every interaction on the channel, from the event log (read page by page) and the store."""
        created: list[str] = []
        after = 0
        while True:
            page = self.api.get("/events", params={"after": after, "limit": 10_000}).json()
            if not page:
                break
            after = int(page[-1]["id"])
            created += [
                e["data"]["interaction"]["id"]
                for e in page
                if e["type"] == "omniroute.interaction_created"
                and e["data"]["interaction"]["channel"] == channel
            ]
        return [self.api.get(f"/interactions/{i}").json() for i in created]


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    c = Centre(tmp_path_factory.mktemp("sip"))
    try:
        yield c
    finally:
        c.api.close()
        c.proc.send_signal(signal.SIGTERM)
        assert c.proc.wait(timeout=60) == 0, (c.workdir / "log").read_text()[-3000:]


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_a_call_waits_ringing_until_an_agent_accepts_then_goes_to_the_agent(
    centre: Centre, transport: str
) -> None:
    before = {i["id"] for i in centre.interactions("voice")}
    caller = centre.sipp("redirect", centre.voice_port, "-m", "1", transport=transport)
    new: list[dict[str, Any]] = []
    for _ in range(500):
        new = [i for i in centre.interactions("voice") if i["id"] not in before]
        if new:
            break
        time.sleep(0.02)
    (call,) = new
    # Caller ID resolved the customer.
    context = centre.api.get(f"/customers/{call['customer_id']}/context").json()
    assert [(i["kind"], i["value"]) for i in context["identities"]] == [("phone", "+442079460958")]
    assert call["status"] == "waiting", "nobody is available yet: the caller hears ringing"
    assert centre.api.put("/agents/ann/state", json={"state": "available"}).status_code == 204
    offer = None
    for _ in range(300):
        offers = [o for o in centre.api.get("/offers").json() if o["interaction"] == call["id"]]
        if offers:
            offer = offers[0]["offer"]
            break
        time.sleep(0.02)
    assert offer is not None
    assert centre.api.post(f"/offers/{offer}/accept").status_code == 204
    centre.finished(caller)  # sipp got 302 with Contact: <sip:ann@pbx.example> and sent its ACK
    assert centre.api.get(f"/interactions/{call['id']}").json()["status"] == "assigned"
    assert centre.api.post(f"/tasks/{call['id']}/complete", json={}).status_code == 204
    assert centre.api.put("/agents/ann/state", json={"state": "offline"}).status_code == 204


def test_outside_open_hours_a_call_is_refused_with_480(centre: Centre) -> None:
    centre.finished(centre.sipp("closed", centre.night_port, "-m", "1"))
    assert centre.interactions("night") == []


def test_a_hundred_calls_a_second_each_pressing_2_then_hanging_up_none_lost(centre: Centre) -> None:
    """The load run: 1,000 calls at 100 a second over UDP. Each presses 2 (the
    menu moves it to billing) and hangs up (CANCEL): every call is stored once,
    moved, and abandoned; sipp saw every answer it expected."""
    calls = 1000
    callers = centre.workdir / "callers.csv"
    callers.write_text("SEQUENTIAL\n" + "".join(f"{2_000_000 + n};\n" for n in range(calls)))
    before = {i["id"] for i in centre.interactions("voice")}
    started = time.monotonic()
    caller = centre.sipp(
        "cancel", centre.voice_port, "-inf", str(callers), "-r", "100", "-m", str(calls), "-l", "600"
    )
    centre.finished(caller, timeout=300)
    elapsed = time.monotonic() - started
    for _ in range(200):
        new = [i for i in centre.interactions("voice") if i["id"] not in before]
        if len(new) == calls and all(i["status"] == "abandoned" for i in new):
            break
        time.sleep(0.1)
    assert len(new) == calls, f"{len(new)} of {calls} calls stored"
    assert {i["status"] for i in new} == {"abandoned"}
    assert {i["queue"] for i in new} == {"billing"}
    assert len({i["customer_id"] for i in new}) == calls
    print(f"\nsip: {calls} calls at 100/s over UDP in {elapsed:.1f} s, every one stored, moved and abandoned")
