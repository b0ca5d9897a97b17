"""SIP messages (RFC 3261, section 7): parse a request, build the responses a UAS sends."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

__all__ = ["SipError", "SipMessage", "parse", "response"]

# RFC 3261 section 7.3.3: the compact forms of header names.
_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
}
_REASONS = {
    100: "Trying",
    180: "Ringing",
    182: "Queued",
    200: "OK",
    302: "Moved Temporarily",
    400: "Bad Request",
    405: "Method Not Allowed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    500: "Server Internal Error",
    503: "Service Unavailable",
}
_REQUEST_LINE = re.compile(r"^([A-Z]+) (\S+) SIP/2\.0$")
MAX_BYTES = 64 * 1024


class SipError(ValueError):
    """A message that is not SIP, or lacks what every request must carry."""


@dataclass
class SipMessage:
    method: str
    uri: str
    # Header names lower-cased (compact forms expanded), values in arrival order.
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def call_id(self) -> str:
        value = self.get("call-id")
        assert value is not None  # checked by parse()
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.get("cseq") or "").partition(" ")
        return int(number), method.strip()

    def caller(self) -> str:
        """The user part of the From URI (the caller's number, usually)."""
        match = re.search(r"<?sips?:([^@;>]+)", self.get("from") or "")
        return match.group(1) if match else ""


def parse(data: bytes) -> SipMessage:
    """A SIP request; SipError naming what is wrong otherwise (responses are not expected by a UAS)."""
    if len(data) > MAX_BYTES:
        raise SipError(f"message: {len(data)} bytes is over {MAX_BYTES}")
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SipError(f"message: not UTF-8: {e}") from e
    lines = text.replace("\r\n", "\n").split("\n")
    match = _REQUEST_LINE.match(lines[0].strip())
    if match is None:
        raise SipError(f"request line: {lines[0][:80]!r} is not METHOD URI SIP/2.0")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # a folded header continues the one before
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipError(f"header: {line[:80]!r} has no colon")
        key = name.strip().lower()
        headers.append((_COMPACT.get(key, key), value.strip()))
    message = SipMessage(method=match.group(1), uri=match.group(2), headers=headers, body=body)
    for required in ("via", "from", "to", "call-id", "cseq"):
        if message.get(required) is None:
            raise SipError(f"{required}: every request carries it (RFC 3261 section 8.1.1)")
    try:
        message.cseq  # noqa: B018 - checks it parses
    except ValueError as e:
        raise SipError(f"cseq: {message.get('cseq')!r} is not a number and a method") from e
    length = message.get("content-length")
    if length is not None:
        try:
            message.body = body[: int(length)]
        except ValueError as e:
            raise SipError(f"content-length: {length!r} is not a number") from e
    return message


def new_tag() -> str:
    return secrets.token_hex(6)


def response(
    request: SipMessage,
    status: int,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """The response to ``request``: its Via, From, Call-ID and CSeq copied, a tag added to To."""
    lines = [f"SIP/2.0 {status} {_REASONS.get(status, 'Unknown')}"]
    for via in request.all("via"):
        lines.append(f"Via: {via}")
    lines.append(f"From: {request.get('from')}")
    to = request.get("to") or ""
    if to_tag is not None and status > 100 and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    lines.append(f"To: {to}")
    lines.append(f"Call-ID: {request.call_id}")
    lines.append(f"CSeq: {request.get('cseq')}")
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    lines.append("Server: omniroute")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
