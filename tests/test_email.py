"""The e-mail channel: real SMTP sessions on loopback, in and out, threads kept by Message-ID."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import aiosmtplib
import anyio
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from omniroute.runtime import MessageIn, Runtime
from omniroute.testing import ChannelRuntime
from omniroute_email import ACKNOWLEDGEMENT_AUTHOR, EmailConnector, EmailOptions

pytestmark = pytest.mark.anyio

CENTRE = "support@centre.example"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SMTP server runs on asyncio's event loop


class Relay:
    """The centre's outgoing SMTP relay, on 127.0.0.1: it keeps what it is given."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.refuse_next: str | None = None
        self.port = 0

    async def at_least(self, count: int) -> bool:
        return len(self.mails) >= count

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        if self.refuse_next is not None:
            answer, self.refuse_next = self.refuse_next, None
            return answer
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        parsed = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(parsed)
        return "250 OK"


@asynccontextmanager
async def relay() -> AsyncIterator[Relay]:
    r = Relay()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(r), "127.0.0.1", 0)
    r.port = server.sockets[0].getsockname()[1]
    try:
        yield r
    finally:
        server.close()
        await server.wait_closed()


def mail(
    sender: str,
    subject: str,
    body: str,
    message_id: str,
    *,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = CENTRE
    m["Subject"] = subject
    m["Message-ID"] = message_id
    if in_reply_to is not None:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for name, value in (headers or {}).items():
        m[name] = value
    m.set_content(body)
    return m


async def until(check: Any, what: str) -> Any:
    for _ in range(500):
        found = await check()
        if found:
            return found
        await anyio.sleep(0.01)
    raise AssertionError(what)


async def interactions_of(runtime: Runtime) -> list[str]:
    events = await runtime.events(0, limit=100_000)
    return [e.subject for e in events if e.type == "interaction_created"]


async def test_mail_in_over_smtp_acknowledged_answered_and_threaded(
    channel_runtime: ChannelRuntime, tmp_path: Path
) -> None:
    async with relay() as out:
        options = EmailOptions(
            addresses=[CENTRE],
            listen_port=0,
            relay_port=out.port,
            attachments_dir=str(tmp_path / "attachments"),
            quarantine_dir=str(tmp_path / "quarantine"),
            max_message_bytes=64 * 1024,
        )
        async with channel_runtime(EmailConnector, options, kind="email", channel="email") as (rt, connector):
            assert isinstance(connector, EmailConnector)
            port = connector.port
            assert port is not None

            async def send(message: EmailMessage, rcpt: str = CENTRE) -> Any:
                return await aiosmtplib.send(message, hostname="127.0.0.1", port=port, recipients=[rcpt])

            first = mail(
                "Pat Doe <pat@example.com>", "Late parcel", "Where is my parcel?", "<p1@example.com>"
            )
            first.add_attachment(
                b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf"
            )
            await send(first)
            # The sending server retries (it did not hear our 250): one message.
            await send(first)
            (interaction,) = await interactions_of(rt)
            stored = await rt.interaction(interaction)
            assert (stored.channel, stored.subject, stored.attributes["email_message_id"]) == (
                "email",
                "Late parcel",
                "<p1@example.com>",
            )
            customer = await rt.customer(stored.customer_id)
            assert customer.display_name == "Pat Doe"
            messages = await rt.messages(interaction)
            assert messages[0].body.strip() == "Where is my parcel?"
            with rt.store.read() as r:
                (attachment,) = r.attachments(messages[0].id)
            digest = hashlib.sha256(b"%PDF-1.4 receipt").hexdigest()
            assert (attachment.filename, attachment.size, attachment.sha256) == ("receipt.pdf", 16, digest)
            assert Path(attachment.location).read_bytes() == b"%PDF-1.4 receipt"

            # The acknowledgement goes out through the relay, in the thread, marked automatic.
            await until(lambda: out.at_least(1), "no acknowledgement")
            ack = out.mails[0]
            assert (ack["To"], ack["In-Reply-To"], ack["Auto-Submitted"]) == (
                "pat@example.com",
                "<p1@example.com>",
                "auto-replied",
            )
            assert str(ack["Subject"]) == "Re: Late parcel"
            assert [m.author for m in await rt.messages(interaction)][-1] == ACKNOWLEDGEMENT_AUTHOR

            # The agent answers; the customer replies to that answer: the same interaction.
            (offer,) = [o for o, (task, _) in rt.offers().items() if task == interaction]
            await rt.accept(offer)
            answer = await rt.add_message(
                interaction, MessageIn(body="It ships today.", direction="outbound", author="agent-1")
            )
            await until(lambda: out.at_least(2), "no answer sent")
            sent = out.mails[1]
            assert sent["Message-ID"] == f"<{answer}@centre.example>"
            assert sent["Auto-Submitted"] is None
            reply = mail(
                "pat@example.com",
                "Re: Late parcel",
                "Thanks!",
                "<p2@example.com>",
                in_reply_to=sent["Message-ID"],
            )
            await send(reply)
            assert [m.body.strip() for m in await rt.messages(interaction)][-1] == "Thanks!"
            assert len(await interactions_of(rt)) == 1
            assert len(out.mails) == 2, "a reply into live work is not acknowledged again"

            # After the work is finished, a reply to the thread opens new work in the same conversation.
            await rt.complete(interaction)
            later = mail(
                "pat@example.com",
                "Re: Late parcel",
                "It did not arrive",
                "<p3@example.com>",
                in_reply_to="<p2@example.com>",
            )
            await send(later)
            new = (await interactions_of(rt))[-1]
            assert new != interaction
            assert (await rt.interaction(new)).conversation_id == stored.conversation_id

            # Machines are not acknowledged; mail to nobody here, too big or unreadable is refused.
            robot = mail(
                "robot@example.com",
                "Out of office",
                "Away",
                "<r1@example.com>",
                headers={"Auto-Submitted": "auto-replied"},
            )
            await send(robot)
            await anyio.sleep(0.2)
            robot_work = (await interactions_of(rt))[-1]
            assert [m.author for m in await rt.messages(robot_work)] == [
                (await rt.interaction(robot_work)).customer_id
            ]
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await send(mail("pat@example.com", "x", "x", "<x1@example.com>"), rcpt="sales@centre.example")
            with pytest.raises(aiosmtplib.SMTPResponseException) as big:
                await send(mail("pat@example.com", "big", "x" * 100_000, "<x2@example.com>"))
            assert big.value.code == 552
            anonymous = mail("", "no sender", "who am I", "<x3@example.com>")
            del anonymous["From"]
            with pytest.raises(aiosmtplib.SMTPResponseException) as unreadable:
                await aiosmtplib.send(
                    anonymous,
                    sender="bounce@example.com",
                    hostname="127.0.0.1",
                    port=port,
                    recipients=[CENTRE],
                )
            assert unreadable.value.code == 554
            assert "From" in unreadable.value.message
            quarantined = list((tmp_path / "quarantine").glob("*.eml"))
            assert len(quarantined) == 1
            assert b"who am I" in quarantined[0].read_bytes()

            # The relay refusing a recipient for good: the delivery fails with its answer.
            out.refuse_next = "550 5.1.1 unknown user"
            (offer,) = [o for o, (task, _) in rt.offers().items() if task == new]
            await rt.accept(offer)
            refused = await rt.add_message(
                new, MessageIn(body="Sorry", direction="outbound", author="agent-1")
            )
            failed = await until(lambda: _failed(rt, refused), "the refused reply did not fail")
            assert "550" in (failed.detail or "")
            rt.check_invariants()


async def _failed(rt: Runtime, message: str) -> Any:
    delivery = await rt.delivery(message)
    return delivery if delivery is not None and delivery.status == "failed" else None


async def test_encoded_names_subjects_and_html_only_mail_read_as_written(
    channel_runtime: ChannelRuntime, tmp_path: Path
) -> None:
    options = EmailOptions(
        addresses=[CENTRE], listen_port=0, relay_port=9, acknowledge=False, attachments_dir=str(tmp_path)
    )
    async with channel_runtime(EmailConnector, options, kind="email", channel="email") as (rt, connector):
        assert isinstance(connector, EmailConnector)
        # Non-ASCII travels as RFC 2047 encoded words in the headers.
        accented = mail("Zoë Dupré <zoe@example.com>", "Café au lait ☕", "Bonjour", "<z1@example.com>")
        html = EmailMessage()
        html["From"] = "html@example.com"
        html["To"] = CENTRE
        html["Subject"] = "Only HTML"
        html["Message-ID"] = "<h1@example.com>"
        html.set_content("<p>Hello <b>there</b></p>", subtype="html")
        for message in (accented, html):
            await aiosmtplib.send(message, hostname="127.0.0.1", port=connector.port, recipients=[CENTRE])
        first, second = await interactions_of(rt)
        zoe = await rt.interaction(first)
        assert zoe.subject == "Café au lait ☕"
        assert (await rt.customer(zoe.customer_id)).display_name == "Zoë Dupré"
        (only,) = await rt.messages(second)
        assert (only.content_type, only.body.strip()) == ("text/html", "<p>Hello <b>there</b></p>")
