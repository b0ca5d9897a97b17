"""Load queues, skills and agents from a TOML or YAML file, validated field by field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import yaml

from omniroute import _rust
from omniroute.errors import InvalidConfigError, OmnirouteError, from_validation
from omniroute.model import EngineConfig, encoder

if TYPE_CHECKING:
    from omniroute.runtime.api import RuntimeSettings

__all__ = ["load_config", "load_settings", "parse_config", "read_document", "validate_config"]


def parse_config(data: Any) -> EngineConfig:
    """Validate plain data (as read from TOML, YAML or JSON) into a configuration."""
    try:
        config = msgspec.convert(data, EngineConfig)
    except msgspec.ValidationError as e:
        raise from_validation(e, InvalidConfigError) from e
    validate_config(config)
    return config


def validate_config(config: EngineConfig) -> None:
    """Check what types alone cannot: names that refer to each other, step order,
    duplicates. Raises :class:`InvalidConfigError` with the path of the bad field."""
    try:
        _rust.Engine(encoder.encode(config), 0.0)
    except InvalidConfigError:
        raise
    except OmnirouteError as e:
        raise InvalidConfigError(str(e)) from e


def read_document(path: Path) -> Any:
    """The plain data of a ``.toml``, ``.yaml`` or ``.yml`` file; any other
    suffix, or text that does not parse, is an :class:`InvalidConfigError`
    naming the file. (Configuration and simulation scenarios are read alike.)"""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise InvalidConfigError(f"{path}: expected a .toml, .yaml or .yml file")
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise InvalidConfigError(f"{path}: not valid {suffix.lstrip('.').upper()}: {e}") from e


def load_config(path: str | Path) -> EngineConfig:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    data = read_document(path)
    try:
        return parse_config(data)
    except InvalidConfigError as e:
        raise InvalidConfigError(f"{path}: {e}") from e


def load_settings(path: str | Path) -> RuntimeSettings:
    """The runtime's settings (``docs/configuration.md``) from a ``.toml``,
    ``.yaml`` or ``.yml`` file, validated field by field."""
    from omniroute.runtime.api import RuntimeSettings

    path = Path(path)
    try:
        return msgspec.convert(read_document(path), RuntimeSettings)
    except msgspec.ValidationError as e:
        raise InvalidConfigError(f"{path}: {from_validation(e)}") from e
