"""omniroute: one routing engine, one customer record and one reporting engine for every channel."""

from importlib.metadata import PackageNotFoundError, version

from omniroute.condition import format_condition, parse_condition
from omniroute.config import load_config, parse_config, validate_config
from omniroute.engine import Counters, Engine
from omniroute.errors import (
    DuplicateIdError,
    InvalidConfigError,
    InvalidInputError,
    InvalidTransitionError,
    InvariantError,
    OmnirouteError,
    SnapshotError,
    UnknownIdError,
)
from omniroute.hookspecs import hookimpl
from omniroute.metrics import Metrics, MetricsConfig, MetricsSnapshot
from omniroute.model import *  # noqa: F403 -- the model's __all__ is the public vocabulary
from omniroute.model import __all__ as _model_all

try:
    __version__ = version("omniroute")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "Counters",
    "DuplicateIdError",
    "Engine",
    "InvalidConfigError",
    "InvalidInputError",
    "InvalidTransitionError",
    "InvariantError",
    "Metrics",
    "MetricsConfig",
    "MetricsSnapshot",
    "OmnirouteError",
    "SnapshotError",
    "UnknownIdError",
    "format_condition",
    "hookimpl",
    "load_config",
    "parse_condition",
    "parse_config",
    "validate_config",
    *_model_all,
]
