"""Messages per second through each text channel, end to end: a signed webhook
request arrives over HTTP, its signature is checked, the message is stored and
its interaction routed (queued or offered) before the answer goes back.

A real ``omniroute serve`` process (SQLite) with four connectors: the
generic webhook, Twilio SMS, Meta's WhatsApp and e-mail (over SMTP, each
client sending its messages over one connection, as mail servers do). Each new message comes from
a new customer, so each opens an interaction. The client keeps 32 requests in
flight per channel, one channel at a time. Baseline in the same run: the
same number of contacts created through the API's own channel
(``POST /api/v1/interactions``, no signature, no connector), at the same
concurrency. Afterwards every acknowledged message is stored exactly once.

Under ``--benchmark-disable`` the sizes shrink so the file runs as a quick test.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import aiosmtplib
import pytest

from omniroute.store import open_store
from omniroute_messaging import hub_signature, twilio_signature
from omniroute_webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from procs import channels_store, free_port, serve_channels
from workload import only_the_centres_plugins  # noqa: F401 - an autouse fixture

SIZES = {"full": 3000, "test": 60}
IN_FLIGHT = 32
SECRET = "bench-webhook-secret-0123"
ACCOUNT = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "bench-twilio-token"
APP_SECRET = "bench-meta-secret"

CONFIG = """
[[channels]]
name = "api"
cost = 1
[[channels]]
name = "social"
cost = 1
[[channels]]
name = "sms"
cost = 1
[[channels]]
name = "whatsapp"
cost = 1
[[channels]]
name = "email"
cost = 1
[[queues]]
name = "support"
"""

CONNECTORS = """
[[connector]]
kind = "webhook"
channel = "social"
queue = "support"
options = {{ secret = "{SECRET}" }}

[[connector]]
kind = "twilio"
channel = "sms"
queue = "support"
[connector.options]
account_sid = "{ACCOUNT}"
auth_token = "{AUTH_TOKEN}"
from_number = "+14155550100"
api_base_url = "http://127.0.0.1:9"

[[connector]]
kind = "whatsapp"
channel = "whatsapp"
queue = "support"
[connector.options]
app_secret = "{APP_SECRET}"
verify_token = "bench-verify-token"
access_token = "bench-access-token"
phone_number_id = "1065403522"
api_base_url = "http://127.0.0.1:9"

[[connector]]
kind = "email"
channel = "email"
queue = "support"
[connector.options]
addresses = ["support@centre.example"]
listen_port = {smtp_port}
relay_port = 9
acknowledge = false
attachments_dir = "{attachments}"
"""


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    return "test" if request.config.getoption("benchmark_disable") else "full"


def phone(n: int) -> str:
    """A valid number per customer (San Francisco, +1 415 2xx xxxx)."""
    return f"+1415{2_000_000 + n:07d}"


Request = tuple[str, bytes, dict[str, str]]


def api_request(base: str, token: str, n: int) -> Request:
    body = {
        "channel": "api",
        "queue": "support",
        "id": f"api-{n}",
        "identities": [{"kind": "phone", "value": phone(n)}],
        "message": {"body": f"message {n}"},
    }
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return f"{base}/api/v1/interactions", json.dumps(body).encode(), headers


def webhook_request(base: str, n: int) -> Request:
    body = json.dumps(
        {"id": f"w-{n}", "from": [{"kind": "phone", "value": phone(n)}], "text": f"message {n}"}
    ).encode()
    stamp = f"{time.time():.3f}"
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(SECRET, stamp, body),
    }
    return f"{base}/api/v1/channels/social/messages", body, headers


def twilio_request(base: str, n: int) -> Request:
    url = f"{base}/api/v1/channels/sms/messages"
    params = {
        "MessageSid": f"SM{n:032d}",
        "AccountSid": ACCOUNT,
        "From": phone(n),
        "To": "+14155550100",
        "Body": f"message {n}",
    }
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, params.items()),
    }
    return url, urlencode(params).encode(), headers


def whatsapp_request(base: str, n: int) -> Request:
    sender = phone(n).lstrip("+")
    document = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "contacts": [{"profile": {"name": f"Customer {n}"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": f"wamid.{n}",
                                    "type": "text",
                                    "text": {"body": f"message {n}"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": hub_signature(APP_SECRET, body)}
    return f"{base}/api/v1/channels/whatsapp/webhook", body, headers


async def drive_smtp(port: int, count: int) -> tuple[float, list[str]]:
    """``count`` mails over IN_FLIGHT SMTP connections, each sending its share in turn."""
    failures: list[str] = []
    pending = iter(range(count))

    async def worker() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60) as smtp:
            for n in pending:
                mail = EmailMessage()
                mail["From"] = f"customer{400_000 + n}@example.com"
                mail["To"] = "support@centre.example"
                mail["Subject"] = f"message {n}"
                mail["Message-ID"] = f"<bench-{n}@example.com>"
                mail.set_content(f"message {n}")
                try:
                    await smtp.send_message(mail)
                except aiosmtplib.SMTPException as e:
                    failures.append(f"mail {n}: {e!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return time.perf_counter() - started, failures


async def drive(requests: list[Request], ok: tuple[int, ...]) -> tuple[float, list[str]]:
    """Send every request with IN_FLIGHT at a time; seconds taken and the failures."""
    failures: list[str] = []
    pending = iter(requests)

    async def worker(http: aiohttp.ClientSession) -> None:
        for url, body, headers in pending:
            async with http.post(url, data=body, headers=headers) as reply:
                text = await reply.text()
                if reply.status not in ok:
                    failures.append(f"{url}: {reply.status} {text[:200]}")

    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(IN_FLIGHT)))
        return time.perf_counter() - started, failures


def test_messages_per_second_through_each_text_channel(benchmark: Any, mode: str, tmp_path: Path) -> None:
    count = SIZES[mode]
    smtp_port = free_port()
    connectors = CONNECTORS.format(
        SECRET=SECRET,
        ACCOUNT=ACCOUNT,
        AUTH_TOKEN=AUTH_TOKEN,
        APP_SECRET=APP_SECRET,
        smtp_port=smtp_port,
        attachments=tmp_path / "attachments",
    )
    proc, port, token = serve_channels(tmp_path, CONFIG, connectors, ["interactions:create"])
    base = f"http://127.0.0.1:{port}"
    # Each channel's customers are its own (numbers offset per channel).
    runs: dict[str, tuple[Callable[[int], Request], tuple[int, ...]]] = {
        "api (baseline)": (lambda n: api_request(base, token, n), (201,)),
        "webhook": (lambda n: webhook_request(base, 100_000 + n), (202,)),
        "twilio sms": (lambda n: twilio_request(base, 200_000 + n), (200,)),
        "whatsapp": (lambda n: whatsapp_request(base, 300_000 + n), (200,)),
    }
    rates: dict[str, float] = {}

    def run_all() -> None:
        for name, (build, ok) in runs.items():
            seconds, failures = asyncio.run(drive([build(n) for n in range(count)], ok))
            assert failures == [], failures[:3]
            rates[name] = count / seconds
        seconds, failures = asyncio.run(drive_smtp(smtp_port, count))
        assert failures == [], failures[:3]
        rates["email (smtp)"] = count / seconds

    try:
        benchmark.pedantic(run_all, rounds=1, iterations=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, (tmp_path / "log").read_text()[-3000:]

    # Nothing lost: every acknowledged message stored once, each in its own interaction.
    with open_store(channels_store(tmp_path)) as store, store.read() as r:
        by_channel: dict[str, int] = {}
        for interaction in r.interactions():
            by_channel[interaction.channel] = by_channel.get(interaction.channel, 0) + 1
        assert r.count("messages") == 5 * count
    assert by_channel == {"api": count, "social": count, "sms": count, "whatsapp": count, "email": count}

    baseline = rates["api (baseline)"]
    benchmark.extra_info.update({f"{name}_per_s": rate for name, rate in rates.items()})
    print(f"\nchannels: {count:,} messages each, {IN_FLIGHT} in flight, arrival -> stored -> routed:")
    for name, rate in rates.items():
        print(f"  {name:<15} {rate:8,.0f} messages/s  ({rate / baseline:.2f}x the API's own channel)")
