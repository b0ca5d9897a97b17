"""The errors omniroute raises: one base class and one class per kind of mistake."""

import re

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
