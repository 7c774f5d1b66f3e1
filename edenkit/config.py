"""Dataclass configs read from YAML, with dotted ``key=value`` overrides and strict checking.

Every entry point describes its settings as (nested) dataclasses. ``load_config`` builds one from a
YAML file (a path, or the name of a file in ``edenkit/configs``) plus command-line overrides such as
``optim.lr=0.01`` or ``stages=[0,2,4]``. An unknown key or a value of the wrong type is a
``ConfigError`` whose message names the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not match the dataclass it is read into."""


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML path as given, or ``edenkit/configs/<name>.yaml`` for a bare name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    packaged = CONFIG_DIR / f"{name_or_path}.yaml"
    if not packaged.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown config {name_or_path!r}; packaged configs: {known}")
    return packaged


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_overrides(overrides: list[str] | None) -> dict:
    """``["a.b=1", "c=[0,2]"]`` -> ``{"a": {"b": 1}, "c": [0, 2]}`` (values parsed as YAML)."""
    nested: dict = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {key}: cannot parse value {raw!r}: {e}") from e
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key}: {part} is set both as a value and as a section")
        node[parts[-1]] = value
    return nested


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge; ``update`` wins."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown config key {name!r} (known keys here: {', '.join(sorted(fields))})")
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}" if where else key)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def to_dict(config: Any) -> dict:
    """A dataclass config as plain data (for checkpoints and logs)."""
    return dataclasses.asdict(config)


def load_config(cls: type[T], name_or_path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls`` <- YAML file <- ``key=value`` overrides, checked strictly."""
    data: dict = {}
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        data = read_yaml(path)
    data = merge(data, parse_overrides(overrides))
    return from_dict(cls, data)


def default_data_root() -> Path:
    """Where real datasets live: ``$EDENKIT_DATA`` or ``./datasets``."""
    return Path(os.environ.get("EDENKIT_DATA", "datasets")).expanduser()

