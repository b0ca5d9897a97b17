"""Customer identities, normalised so that one customer is found whatever channel they use.

A phone number becomes E.164 (``+442079460958``) however it was typed; an e-mail address becomes the
``email-validator`` normalised form, lower-cased; handles are trimmed (and lower-cased on platforms where
they are case-insensitive). Nothing here touches the network.
"""

from __future__ import annotations

import functools
import re
from typing import Final, Literal, get_args

import msgspec
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberMatcher, ValidationResult

from omniroute.errors import InvalidInputError

__all__ = ["KINDS", "Identity", "IdentityError", "IdentityKind", "find_identities", "normalize", "parse"]

IdentityKind = Literal["phone", "email", "chat", "whatsapp", "messenger", "instagram", "telegram", "x"]
"""The kinds of identity. There is no ``sms``: an SMS sender is a ``phone``."""

KINDS: Final[tuple[IdentityKind, ...]] = get_args(IdentityKind)
_KIND_BY_NAME: Final[dict[str, IdentityKind]] = {kind: kind for kind in KINDS}

_PHONE_KINDS: Final = frozenset({"phone", "whatsapp"})
_LOWERED_HANDLES: Final = frozenset({"instagram", "telegram", "x"})  # case-insensitive on those platforms
_MAX_LEN: Final = {"email": 320, "phone": 64, "whatsapp": 64 + len("whatsapp:")}
_MAX_HANDLE_LEN: Final = 256
_PHONE_REASONS: Final = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number without its area code",
}
_PARSE_REASONS: Final = {
    NumberParseException.NOT_A_NUMBER: "not a number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
# A candidate e-mail address in free text: no spaces, brackets, quotes or list punctuation around the @.
_EMAIL_CANDIDATE: Final = re.compile(r"[^\s<>()\[\]{},;:\"'@]+@[^\s<>()\[\]{},;:\"'@]+")
_KIND_PREFIX: Final = re.compile(r"\s*([A-Za-z]+)\s*:(.*)", re.DOTALL)


class IdentityError(InvalidInputError):
    """An identity that cannot be normalised; the message names the field and the problem."""


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """One normalised identity. Make them with `normalize` or `parse`, which check the value."""

    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        """The ``kind:value`` form that `parse` reads back."""
        return f"{self.kind}:{self.value}"


def normalize(
    kind: str, value: str, *, default_region: str | None = None, field: str = "identity"
) -> Identity:
    """The normalised identity of ``kind`` for ``value``, or `IdentityError` naming ``field``.

    - ``phone`` and ``whatsapp``: must be a valid (assigned, not merely possible) number; becomes E.164.
      ``default_region`` (ISO 3166 alpha-2, e.g. ``"GB"``) reads national forms such as ``020 7946 0958``
      and the region's own international prefix; without it the number must start with ``+`` or ``00``.
      A ``whatsapp:`` prefix inside the value, as Twilio sends it, is dropped.
    - ``email``: ``email-validator``'s normalised form (Unicode domain, NFC), syntax only, never DNS.
      The whole address is lower-cased: local parts are case-sensitive by the RFC but case-insensitive at
      every provider we care about, and one customer must not become two over a capital letter.
      ``Jo Bloggs <jo@example.com>`` is accepted.
    - ``chat``, ``messenger``: opaque ids, kept as they are once trimmed.
    - ``instagram``, ``telegram``, ``x``: handles; one leading ``@`` is dropped and they are lower-cased.
    """
    region = _region(default_region)
    checked = _KIND_BY_NAME.get(kind)
    if checked is None:
        hint = " (an SMS sender is a 'phone')" if kind == "sms" else ""
        raise IdentityError(
            f"{field}: unknown identity kind {kind!r}{hint}; expected one of {', '.join(KINDS)}"
        )
    limit = _MAX_LEN.get(kind, _MAX_HANDLE_LEN)
    if len(value) > limit:
        raise IdentityError(f"{field}: {kind} is {len(value)} characters long, more than {limit}")
    try:
        if kind in _PHONE_KINDS:
            return Identity(kind=checked, value=_phone(value, region))
        if kind == "email":
            return Identity(kind="email", value=_email(value))
    except IdentityError as e:
        raise IdentityError(f"{field}: {e}") from e.__cause__
    handle = value.strip()
    if kind in _LOWERED_HANDLES:
        handle = handle.removeprefix("@").lower()
    if not handle:
        raise IdentityError(f"{field}: {kind} handle is empty")
    if any(ch.isspace() or not ch.isprintable() for ch in handle):
        raise IdentityError(f"{field}: {kind} handle {value!r} contains whitespace or control characters")
    return Identity(kind=checked, value=handle)


def parse(text: str, *, default_region: str | None = None, field: str = "identity") -> Identity:
    """An identity written ``kind:value`` (``phone:+44 20 7946 0958``), or a bare e-mail or phone number."""
    if prefixed := _KIND_PREFIX.fullmatch(text):
        kind, value = prefixed.groups()
        return normalize(kind.lower(), value, default_region=default_region, field=field)
    bare = text.strip()
    if "@" in bare[1:]:
        return normalize("email", bare, default_region=default_region, field=field)
    if bare[:1].isdigit() or bare[:1] in ("+", "("):
        return normalize("phone", bare, default_region=default_region, field=field)
    raise IdentityError(
        f"{field}: {text!r} is neither an e-mail address nor a phone number; "
        f"write it as kind:value with kind one of {', '.join(KINDS)}"
    )


def find_identities(text: str, *, default_region: str | None = None) -> list[Identity]:
    """The e-mail addresses and valid phone numbers in free text, normalised, once each, in order.

    Without ``default_region`` only numbers written with ``+`` are found.
    """
    region = _region(default_region)
    found: list[tuple[int, Identity]] = []
    email_spans: list[tuple[int, int]] = []
    for m in _EMAIL_CANDIDATE.finditer(text):
        candidate = m.group().rstrip(".!?")
        try:
            found.append((m.start(), Identity(kind="email", value=_email(candidate))))
        except IdentityError:
            continue
        email_spans.append((m.start(), m.start() + len(candidate)))
    for match in PhoneNumberMatcher(text, region or "ZZ"):
        if any(start < match.end and match.start < end for start, end in email_spans):
            continue  # digits inside an e-mail address
        if phonenumbers.is_valid_number(match.number):
            e164 = phonenumbers.format_number(match.number, PhoneNumberFormat.E164)
            found.append((match.start, Identity(kind="phone", value=e164)))
    found.sort(key=lambda pair: pair[0])
    return list(dict.fromkeys(identity for _, identity in found))


def _region(default_region: str | None) -> str | None:
    if default_region is None:
        return None
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise IdentityError(f"default_region: {default_region!r} is not a supported ISO 3166 region code")
    return region


# The same customers come back: their identities are normalised once per
# process (a valid address takes email-validator about 100 µs). Refusals are
# not kept; they raise again, naming the value but not the field (the caller
# adds it).
_CACHE_SIZE: Final = 65_536


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _phone(value: str, region: str | None) -> str:
    number = value.strip()
    if number[:9].lower() == "whatsapp:":
        number = number[9:].strip()
    if region is None and number.startswith("00"):
        number = "+" + number[2:]  # the international prefix of most of the world
    try:
        parsed = phonenumbers.parse(number, region)
    except NumberParseException as e:
        if e.error_type != NumberParseException.INVALID_COUNTRY_CODE:
            reason = _PARSE_REASONS.get(e.error_type, "not a number")
        elif region is None and not number.startswith("+"):
            reason = "no country code: start it with + or 00, or give a default region"
        else:
            reason = "unknown country code"
        raise IdentityError(f"{value!r} is not a valid phone number ({reason})") from e
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != ValidationResult.IS_POSSIBLE:
        reason = _PHONE_REASONS.get(possible, "not possible")
        raise IdentityError(f"{value!r} is not a valid phone number ({reason})")
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        raise IdentityError(f"{value!r} is not a valid phone number (no such number in {where})")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _email(value: str) -> str:
    try:
        checked = validate_email(value.strip(), check_deliverability=False, allow_display_name=True)
    except EmailNotValidError as e:
        raise IdentityError(f"{value!r} is not a valid e-mail address ({e})") from e
    return checked.normalized.lower()
