"""Customer identities: one customer, one identity, whatever channel or format they arrive in."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniroute.errors import InvalidInputError
from omniroute.identity import KINDS, Identity, IdentityError, find_identities, normalize, parse

REGIONS = ["GB", "US", "DE", "FR", "IN", "BR", "JP", "AU", "NG", "MX", "ES", "SG"]


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", None, "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("00 44 20 7946 0958", "GB", "+442079460958"),
        ("07400 123456", "GB", "+447400123456"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("415.555.0123", "us", "+14155550123"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("+1 415 555 0123", "GB", "+14155550123"),
        ("030 901820", "DE", "+4930901820"),
        ("+49 30 901820", None, "+4930901820"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "DE", "+33612345678"),
        ("090-1234-5678", "JP", "+819012345678"),
        ("0412 345 678", "AU", "+61412345678"),
        ("+91 81234 56789", None, "+918123456789"),
    ],
)
def test_phone_numbers_normalise_to_e164(typed: str, region: str | None, e164: str) -> None:
    assert normalize("phone", typed, default_region=region) == Identity(kind="phone", value=e164)


def test_whatsapp_is_a_phone_number_and_twilio_prefix_is_dropped() -> None:
    expected = Identity(kind="whatsapp", value="+14155550123")
    assert normalize("whatsapp", "whatsapp:+14155550123") == expected
    assert normalize("whatsapp", "(415) 555-0123", default_region="US") == expected
    assert parse("whatsapp:+14155550123") == expected


@pytest.mark.parametrize(
    ("typed", "region", "reason"),
    [
        ("+1 555", None, "too short"),
        ("+44 20 7946 09581234", None, "too long"),
        ("+1 555 123 4567", None, "no such number in US"),
        ("call me maybe", "GB", "not a number"),
        ("", "GB", "not a number"),
        ("020 7946 0958", None, "no country code"),
        ("+999 1234567", None, "unknown country code"),
        ("7946 0958", "GB", "local number"),
    ],
)
def test_invalid_phone_numbers_name_the_field_and_the_reason(
    typed: str, region: str | None, reason: str
) -> None:
    with pytest.raises(IdentityError) as info:
        normalize("phone", typed, default_region=region, field="identities[0].value")
    message = str(info.value)
    assert message.startswith(f"identities[0].value: {typed!r} is not a valid phone number (")
    assert reason in message


def test_identity_error_is_an_invalid_input_error() -> None:
    with pytest.raises(InvalidInputError, match=r"^identity: '\+1 555' is not a valid phone number"):
        normalize("phone", "+1 555")


def test_overlong_values_are_refused_before_parsing() -> None:
    with pytest.raises(IdentityError, match="more than 64"):
        normalize("phone", "+44" + "1" * 70)
    with pytest.raises(IdentityError, match="more than 320"):
        normalize("email", "a" * 300 + "@" + "b" * 20 + ".com")
    with pytest.raises(IdentityError, match="more than 256"):
        normalize("chat", "v" * 257)


def test_unknown_default_region_is_refused() -> None:
    with pytest.raises(IdentityError, match="default_region: 'XX'"):
        normalize("phone", "020 7946 0958", default_region="XX")


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("jo@example.com", "jo@example.com"),
        ("Jo@Example.COM", "jo@example.com"),
        ("  JO.BLOGGS+support@Example.co.uk ", "jo.bloggs+support@example.co.uk"),
        ("Jo Bloggs <Jo@Example.com>", "jo@example.com"),
        ('"Bloggs, Jo" <jo@example.com>', "jo@example.com"),
        ("jo@BÜCHER.de", "jo@bücher.de"),
        ("jo@xn--bcher-kva.de", "jo@bücher.de"),
        ("Jörg@Example.com", "jörg@example.com"),
    ],
)
def test_email_addresses_normalise(typed: str, value: str) -> None:
    assert normalize("email", typed) == Identity(kind="email", value=value)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "jo",
        "jo@",
        "@example.com",
        "jo@localhost",
        "jo..bloggs@example.com",
        "jo@example.test",
        "jo bloggs@example.com",
        "a@example.com, b@example.com",
        "Jo <jo@example.com> extra",
    ],
)
def test_invalid_email_addresses_name_the_field(typed: str) -> None:
    with pytest.raises(IdentityError, match=r"^contact\.email: .* is not a valid e-mail address \("):
        normalize("email", typed, field="contact.email")


@pytest.mark.parametrize(
    ("kind", "typed", "value"),
    [
        ("instagram", " @Jo.Bloggs ", "jo.bloggs"),
        ("telegram", "@JoBloggs", "jobloggs"),
        ("x", "@@JoBloggs", "@jobloggs"),
        ("x", "JoBloggs", "jobloggs"),
        ("chat", " Visitor-7f3A ", "Visitor-7f3A"),
        ("messenger", "24681357AbC", "24681357AbC"),
    ],
)
def test_handles(kind: str, typed: str, value: str) -> None:
    assert normalize(kind, typed) == Identity(kind=kind, value=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "typed", "problem"),
    [
        ("chat", "   ", "is empty"),
        ("x", "@", "is empty"),
        ("telegram", "jo bloggs", "whitespace or control"),
        ("chat", "a\x00b", "whitespace or control"),
        ("messenger", "a\u200bb", "whitespace or control"),
    ],
)
def test_invalid_handles_name_the_field(kind: str, typed: str, problem: str) -> None:
    with pytest.raises(IdentityError, match=rf"^customer\[2\]: {kind} handle .*{problem}"):
        normalize(kind, typed, field="customer[2]")


@pytest.mark.parametrize("kind", ["sms", "fax", "Phone", ""])
def test_unknown_kinds_list_the_accepted_ones(kind: str) -> None:
    with pytest.raises(IdentityError, match="unknown identity kind") as info:
        normalize(kind, "+14155550123")
    assert ", ".join(KINDS) in str(info.value)
    assert "sms" not in KINDS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phone:+44 20 7946 0958", Identity(kind="phone", value="+442079460958")),
        ("phone:020 7946 0958", Identity(kind="phone", value="+442079460958")),
        ("Email:Jo@Example.COM", Identity(kind="email", value="jo@example.com")),
        ("instagram:@Jo.Bloggs", Identity(kind="instagram", value="jo.bloggs")),
        ("chat:Visitor-7f3A", Identity(kind="chat", value="Visitor-7f3A")),
        ("Jo@Example.COM", Identity(kind="email", value="jo@example.com")),
        ("Jo Bloggs <jo@example.com>", Identity(kind="email", value="jo@example.com")),
        ("+44 20 7946 0958", Identity(kind="phone", value="+442079460958")),
        ("020 7946 0958", Identity(kind="phone", value="+442079460958")),
    ],
)
def test_parse_with_and_without_kind(text: str, expected: Identity) -> None:
    assert parse(text, default_region="GB") == expected
    assert parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("jobloggs", "neither an e-mail address nor a phone number"),
        ("@jobloggs", "neither an e-mail address nor a phone number"),
        ("", "neither an e-mail address nor a phone number"),
        ("fax:+442079460958", "unknown identity kind 'fax'"),
        ("+1 555", "not a valid phone number"),
        ("jo@localhost", "not a valid e-mail address"),
    ],
)
def test_parse_errors_name_the_field(text: str, problem: str) -> None:
    with pytest.raises(IdentityError, match=rf"^identities\[3\]: .*{problem}"):
        parse(text, field="identities[3]")


def test_find_identities_in_chat_text() -> None:
    text = (
        "Hi, my email is Jo@Example.com, call me on +44 20 7946 0958 or my mobile 07400 123456. "
        "Work address: jo.bloggs@acme.co.uk. (Again: jo@example.com, +442079460958.) Order 12345678."
    )
    assert find_identities(text, default_region="GB") == [
        Identity(kind="email", value="jo@example.com"),
        Identity(kind="phone", value="+442079460958"),
        Identity(kind="phone", value="+447400123456"),
        Identity(kind="email", value="jo.bloggs@acme.co.uk"),
    ]


def test_find_identities_without_region_finds_only_international_numbers() -> None:
    text = "ring 07400 123456 or +1 (415) 555-0123, or write to <sales@example.org>."
    assert find_identities(text) == [
        Identity(kind="phone", value="+14155550123"),
        Identity(kind="email", value="sales@example.org"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no contact details here, thanks!",
        "order 12345678 placed 2024-01-01 at 10:30",
        "email me @ home",
        "jo@localhost or +1 555",
    ],
)
def test_find_identities_finds_nothing(text: str) -> None:
    assert find_identities(text, default_region="GB" if "order" in text else None) == []


def test_find_identities_does_not_take_digits_inside_an_email_for_a_phone() -> None:
    assert find_identities("jo+447400123456@example.com") == [
        Identity(kind="email", value="jo+447400123456@example.com")
    ]


_NUMBER_TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
_FORMATS = [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]


@given(st.sampled_from(REGIONS), st.sampled_from(_NUMBER_TYPES), st.sampled_from(_FORMATS))
def test_normalize_phone_is_idempotent(region: str, number_type: int, fmt: int) -> None:
    example = phonenumbers.example_number_for_type(region, number_type)
    assert example is not None
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    once = normalize("phone", phonenumbers.format_number(example, fmt))
    assert normalize("phone", national, default_region=region) == once
    assert normalize(once.kind, once.value) == once
    assert parse(str(once)) == once


_ATOM = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+", min_size=1, max_size=12
)
_LABEL = st.from_regex(r"[a-zA-Z][a-zA-Z0-9]{0,10}", fullmatch=True)


@given(
    st.lists(_ATOM, min_size=1, max_size=3),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "CO.UK", "de", "Io"]),
)
def test_normalize_email_is_idempotent(atoms: list[str], labels: list[str], tld: str) -> None:
    address = ".".join(atoms) + "@" + ".".join([*labels, tld])
    once = normalize("email", address)
    assert once.value == address.lower()
    assert normalize(once.kind, once.value) == once
    assert normalize("email", f"Someone <{address.upper()}>") == once


def test_a_value_seen_before_gives_the_same_answer_and_each_refusal_names_its_own_field() -> None:
    """Normalised values are kept per process; refusals are not, and still name the field asked about."""
    first = normalize("email", "Jo@Example.COM", field="identities[0]")
    assert normalize("email", "Jo@Example.COM", field="identities[3]") == first
    for field in ("identities[0]", "message.body"):
        with pytest.raises(
            IdentityError, match=rf"^{re.escape(field)}: 'not-an-address' is not a valid e-mail"
        ):
            normalize("email", "not-an-address", field=field)
        with pytest.raises(
            IdentityError, match=rf"^{re.escape(field)}: '\+44 1' is not a valid phone number"
        ):
            normalize("phone", "+44 1", field=field)
