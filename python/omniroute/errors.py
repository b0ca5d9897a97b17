"""The errors omniroute raises: one base class and one class per kind of mistake."""

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from omniroute._rust import (
    DuplicateIdError,
    InvalidConfigError,
    InvalidInputError,
    InvalidTransitionError,
    InvariantError,
    OmnirouteError,
    SnapshotError,
    UnknownIdError,
)

__all__ = [
    "DuplicateIdError",
    "InvalidConfigError",
    "InvalidInputError",
    "InvalidTransitionError",
    "InvariantError",
    "OmnirouteError",
    "RuntimeClosedError",
    "SnapshotError",
    "UnknownIdError",
    "error_for_kind",
    "from_validation",
    "kind_of",
    "refuse_nul",
]


class RuntimeClosedError(OmnirouteError):
    """The runtime is shutting down or stopped; nothing of the call was applied."""


_BY_KIND: dict[str, type[OmnirouteError]] = {
    "unknown_id": UnknownIdError,
    "duplicate_id": DuplicateIdError,
    "invalid_transition": InvalidTransitionError,
    "invalid_config": InvalidConfigError,
    "invalid_input": InvalidInputError,
}


def error_for_kind(kind: str, message: str) -> OmnirouteError:
    """The exception for an error reported in a batch result."""
    return _BY_KIND.get(kind, OmnirouteError)(message)


def kind_of(error: OmnirouteError) -> str:
    """The error's kind as clients see it: the inverse of :func:`error_for_kind`."""
    for kind, cls in _BY_KIND.items():
        if isinstance(error, cls):
            return kind
    return "unavailable" if isinstance(error, RuntimeClosedError) else "error"


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_WORDS = [
    ("Expected `float`", "expected a number"),
    ("Expected `int`", "expected a whole number"),
    ("Expected `str`", "expected a string"),
    ("Expected `bool`", "expected true or false"),
    ("Expected `array`", "expected a list"),
    ("Expected `object`", "expected a table"),
    (">=", "≥"),
    ("<=", "≤"),
]


def from_validation(
    error: msgspec.ValidationError, cls: type[OmnirouteError] = InvalidInputError, *, where: str = ""
) -> OmnirouteError:
    """msgspec's validation error in our words, the path of the bad field first
    (``queues[0].steps[1].after_seconds: expected a number ≥ 0``); ``where``
    prefixes the path when the value checked is part of something larger."""
    m = _AT.match(str(error))
    message = m.group("msg") if m else str(error)
    path = (m.group("path") or "").lstrip(".") if m else ""
    path = ".".join(p for p in (where, path) if p)
    for old, new in _WORDS:
        message = message.replace(old, new)
    message = message.replace("`", "")
    message = message[:1].lower() + message[1:]
    return cls(f"{path}: {message}" if path else message)


_json = msgspec.json.Encoder()


def refuse_nul(values: Mapping[str, Any], *, top: str | None = None) -> None:
    """Refuse values whose text holds a NUL character (U+0000), naming the
    field: PostgreSQL's text cannot hold one (its driver refuses the whole
    statement, and with it every call of a batch), so neither store takes
    one. ``values`` are named as the caller named them; the fields of the
    one named ``top`` are named alone. The values' JSON, where a NUL is
    written ``\\u0000``, says in one pass whether any text may hold one."""
    try:
        if b"\\u0000" not in _json.encode(values):
            return
    except (TypeError, ValueError):
        pass
    for name, value in values.items():
        found = _nul_field(value, "" if name == top else name)
        if found is not None:
            raise InvalidInputError(f"{found}: contains a NUL character (U+0000), which text cannot hold")


def _nul_field(value: object, path: str) -> str | None:
    """The path of the first text in ``value`` holding a NUL character, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items: Iterable[tuple[str, object]]
    if isinstance(value, msgspec.Struct):
        items = ((f"{path}.{f}" if path else f, getattr(value, f)) for f in value.__struct_fields__)
    elif isinstance(value, dict):
        for key in value:
            if isinstance(key, str) and "\x00" in key:
                return f"{path} (the key {key!r})"
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, item in items:
        found = _nul_field(item, where)
        if found is not None:
            return found
    return None
