"""omniroute channel: e-mail in through the connector's own SMTP server, out through the centre's relay.

- Mail is accepted only for the configured ``addresses``; it is stored
  (through the gateway) before the server answers 250, so a message the
  sender's server was told is delivered is never lost.
- A reply joins its thread: ``In-Reply-To`` and ``References`` name a
  message omniroute sent (``<message-id@domain>``) or one it received; the
  reply joins that interaction while it is live, else opens a new one in the
  same conversation.
- Attachments are written to ``attachments_dir`` under their SHA-256 and
  kept as metadata on the message.
- A message over ``max_message_bytes`` is refused during the SMTP session
  (552). A message that cannot be read (no sender, undecodable MIME) is
  refused with 554, never dropped: the sender's server bounces it, and a copy
  goes to ``quarantine_dir`` when one is set.
- A new contact gets an automatic acknowledgement (unless the mail is itself
  automatic: ``Auto-Submitted``, ``Precedence: bulk``...), which goes
  through the transcript and the relay like any reply.

The server runs on the asyncio event loop (``omniroute serve``'s).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, ClassVar

import aiosmtplib
import anyio
from aiosmtpd.smtp import SMTP, Envelope, Session
from anyio.abc import TaskStatus
from msgspec import Meta, Struct

from omniroute import hookimpl
from omniroute.channels import (
    Capabilities,
    ChannelConnector,
    ChannelGateway,
    ChannelKind,
    ChannelSetup,
    DeliveryError,
    Inbound,
    Outbound,
    stable_id,
)
from omniroute.errors import InvalidInputError
from omniroute.runtime.api import AttachmentIn, IdentityIn, MessageIn

__all__ = ["KIND", "EmailConnector", "EmailOptions"]

log = logging.getLogger("omniroute_email")

# The interaction's attributes that keep its thread.
THREAD = "email_message_id"
REFERENCES = "email_references"
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
# The author of the automatic acknowledgements in the transcript.
ACKNOWLEDGEMENT_AUTHOR = "auto-acknowledgement"


class EmailOptions(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # The mailboxes this channel answers for; mail to anyone else is refused (550).
    addresses: Annotated[list[str], Meta(min_length=1)]
    # Where the SMTP server listens (port 0: any free one, see ``EmailConnector.port``).
    listen_host: str = "127.0.0.1"
    listen_port: Annotated[int, Meta(ge=0, le=65535)] = 2525
    # The relay that replies leave through.
    relay_host: str = "127.0.0.1"
    relay_port: Annotated[int, Meta(ge=1, le=65535)] = 25
    relay_username: str | None = None
    relay_password: str | None = None
    relay_starttls: bool = False
    max_message_bytes: Annotated[int, Meta(ge=1024, le=100 * 1024 * 1024)] = 10 * 1024 * 1024
    attachments_dir: str = "attachments"
    quarantine_dir: str | None = None
    acknowledge: bool = True
    acknowledgement: str = (
        "Thank you for writing to us. We have your message and will answer it as soon as we can; "
        "reply to this e-mail to add to it."
    )
    timeout_seconds: Annotated[float, Meta(gt=0, le=300)] = 30.0


class _RefusedError(Exception):
    """The message cannot be read: the SMTP answer says why."""


_PARSER = BytesParser(policy=policy.compat32)


def _text(value: object) -> str:
    """A header's text with its encoded words (RFC 2047) decoded."""
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (LookupError, ValueError, HeaderParseError):
        return str(value)


def _parts(message: Message) -> tuple[Message | None, list[Message]]:
    """The body (the first plain-text part, else the first HTML one) and the attachments."""
    plain: Message | None = None
    html: Message | None = None
    attached: list[Message] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = str(part.get("Content-Disposition", "")).split(";", 1)[0].strip().lower()
        kind = part.get_content_type()
        if disposition == "attachment" or (part.get_filename() and disposition != "inline"):
            attached.append(part)
        elif kind == "text/plain" and plain is None:
            plain = part
        elif kind == "text/html" and html is None:
            html = part
        elif not kind.startswith("text/"):
            attached.append(part)
    return plain or html, attached


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _references(message: Message) -> list[str]:
    """Message-IDs the message answers, nearest first (In-Reply-To, then References backwards)."""
    found: list[str] = []
    for header in ("In-Reply-To", "References"):
        value = message.get(header)
        if value:
            ids = [part.strip() for part in str(value).replace("\n", " ").split() if part.strip()]
            found.extend(reversed(ids) if header == "References" else ids)
    return list(dict.fromkeys(found))


def _automatic(message: Message) -> bool:
    """Mail sent by a machine (an auto-reply, a list): never acknowledged, so two robots do not chat."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return submitted != "no" or precedence in _AUTOMATIC_PRECEDENCE or bool(message.get("List-Id"))


class EmailConnector(ChannelConnector):
    capabilities: ClassVar[Capabilities] = Capabilities(synchronous=False, rich_media=True, typing=False)
    options: EmailOptions

    def __init__(self, setup: ChannelSetup, options: EmailOptions) -> None:
        super().__init__(setup, options)
        self._addresses = {a.strip().lower() for a in options.addresses}
        self._domain = options.addresses[0].rsplit("@", 1)[-1]
        self.port: int | None = None
        self.quarantined = 0

    # ----- inbound -----

    async def run(
        self, gateway: ChannelGateway, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self._gateway = gateway
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(
                self,
                data_size_limit=self.options.max_message_bytes,
                enable_SMTPUTF8=True,
                hostname=self._domain,
                timeout=self.options.timeout_seconds,
            ),
            self.options.listen_host,
            self.options.listen_port,
        )
        self.port = server.sockets[0].getsockname()[1]
        try:
            task_status.started()
            await anyio.sleep_forever()
        finally:
            server.close()
            with anyio.CancelScope(shield=True):
                await server.wait_closed()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's name for the hook
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip().lower() not in self._addresses:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's name for the hook
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        try:
            await self._take(data)
        except _RefusedError as e:
            self._quarantine(data, str(e))
            return f"554 5.6.0 {e}"
        except InvalidInputError as e:
            self._quarantine(data, str(e))
            return f"554 5.6.0 {e}"
        except Exception:
            log.exception("channel %s: a message could not be stored", self.setup.channel)
            return "451 4.3.0 not stored; try again later"
        return "250 2.0.0 stored"

    def _quarantine(self, data: bytes, why: str) -> None:
        self.quarantined += 1
        if self.options.quarantine_dir is None:
            return
        folder = Path(self.options.quarantine_dir)
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(data).hexdigest()
        (folder / f"{name}.eml").write_bytes(data)
        (folder / f"{name}.why").write_text(why + "\n")

    def _keep(self, content: bytes) -> tuple[int, str, str]:
        digest = hashlib.sha256(content).hexdigest()
        folder = Path(self.options.attachments_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / digest
        if not path.exists():
            path.write_bytes(content)
        return len(content), digest, str(path.resolve())

    async def _take(self, data: bytes) -> None:
        # compat32: headers stay plain strings, read only where needed (the
        # default policy's header objects cost most of a message's time).
        try:
            message = _PARSER.parsebytes(data)
        except Exception as e:
            raise _RefusedError(f"the message cannot be parsed: {e}") from e
        raw_name, sender = parseaddr(str(message.get("From", "")))
        if not sender or "@" not in sender:
            raise _RefusedError("From: the message names no sender address")
        name = _text(raw_name)
        message_id = (
            str(message.get("Message-ID", "")).strip() or f"<{hashlib.sha256(data).hexdigest()}@unidentified>"
        )
        subject = _text(message.get("Subject")).strip() or None
        try:
            body_part, attached = _parts(message)
            body = _decoded(body_part) if body_part is not None else ""
            content_type = body_part.get_content_type() if body_part is not None else "text/plain"
            attachments = []
            for part in attached:
                content = part.get_payload(decode=True)
                if not isinstance(content, bytes):
                    continue
                size, digest, location = self._keep(content)
                attachments.append(
                    AttachmentIn(
                        filename=_text(part.get_filename() or "attachment")[:255] or "attachment",
                        content_type=part.get_content_type(),
                        size=size,
                        sha256=digest,
                        location=location,
                    )
                )
        except (LookupError, ValueError, AttributeError) as e:
            raise _RefusedError(f"the MIME structure cannot be read: {e!r}") from e
        references = _references(message)
        inbound = Inbound(
            provider_id=message_id,
            identities=[IdentityIn(kind="email", value=sender)],
            body=str(body),
            content_type=content_type if content_type in ("text/plain", "text/html") else "text/plain",
            display_name=name or None,
            subject=subject,
            attachments=attachments,
            attributes={THREAD: message_id, REFERENCES: " ".join([*reversed(references), message_id])[:4000]},
        )
        interaction, conversation = await self._thread_of(references)
        received = await self.gateway.receive(inbound, interaction=interaction, conversation=conversation)
        if (
            self.options.acknowledge
            and received.new_interaction
            and not received.duplicate
            and not _automatic(message)
            and sender.lower() not in self._addresses
        ):
            await self.gateway.runtime.add_message(
                received.interaction,
                MessageIn(
                    body=self.options.acknowledgement,
                    direction="outbound",
                    author=ACKNOWLEDGEMENT_AUTHOR,
                ),
            )

    async def _thread_of(self, references: list[str]) -> tuple[str | None, str | None]:
        """The live interaction a reply belongs to, or the conversation of the finished one."""
        runtime = self.gateway.runtime
        for ref in references:
            local = ref.strip("<>").split("@", 1)[0]
            candidates = [local] if ref.endswith(f"@{self._domain}>") else []
            candidates.append(stable_id("m", self.setup.channel, ref))
            for candidate in candidates:
                found = await runtime.message(candidate)
                if found is None:
                    continue
                interaction = await runtime.interaction(found.interaction_id)
                if interaction.status in ("waiting", "offered", "assigned"):
                    return interaction.id, None
                return None, interaction.conversation_id
        return None, None

    # ----- outbound -----

    async def send(self, message: Outbound) -> str | None:
        to = next((i.value for i in message.to if i.kind == "email"), None)
        if to is None:
            raise DeliveryError("to: the customer has no e-mail address", retry=False)
        mail = EmailMessage()
        mail["From"] = Address(addr_spec=self.options.addresses[0])
        mail["To"] = to
        subject = message.subject or "Your message"
        mail["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        mail["Message-ID"] = f"<{message.message_id}@{self._domain}>"
        thread = message.attributes.get(THREAD)
        if isinstance(thread, str) and thread:
            mail["In-Reply-To"] = thread
            references = message.attributes.get(REFERENCES)
            mail["References"] = references if isinstance(references, str) and references else thread
        if message.author == ACKNOWLEDGEMENT_AUTHOR:
            mail["Auto-Submitted"] = "auto-replied"
        mail["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        mail.set_content(message.body)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.options.relay_host,
                port=self.options.relay_port,
                username=self.options.relay_username,
                password=self.options.relay_password,
                start_tls=self.options.relay_starttls,
                timeout=self.options.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            raise DeliveryError(f"relay: refused the recipient: {e}", retry=False) from e
        except aiosmtplib.SMTPResponseException as e:
            raise DeliveryError(f"relay: {e.code} {e.message}", retry=e.code < 500) from e
        except (aiosmtplib.SMTPException, OSError) as e:
            raise DeliveryError(f"relay: {e!r}", retry=True) from e
        return str(mail["Message-ID"])


KIND = ChannelKind(
    name="email",
    connector=EmailConnector,
    options=EmailOptions,
    description="e-mail: its own SMTP server in, an SMTP relay out, threads by Message-ID",
)


@hookimpl
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    register(KIND)
