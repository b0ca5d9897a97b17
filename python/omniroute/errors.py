"""The errors omniroute raises: one base class and one class per kind of mistake."""

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
    "SnapshotError",
    "UnknownIdError",
    "error_for_kind",
]

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
