"""Typed config schemas: turn plain dicts (from YAML/Hydra) into validated dataclasses.

A schema is a dataclass whose fields carry type hints. :func:`from_dict` walks the
data against the schema and raises :class:`ConfigError` with the dotted key that is
wrong and what is allowed, so the command line can print one clear line.
Range checks live in each dataclass's ``__post_init__``, which raises
``ValueError("<field>: <message>")``; the field path is prefixed here.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ConfigError(ValueError):
    """A user-facing configuration error; its message is one line naming the key."""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against type ``tp`` and return it converted (e.g. int -> float)."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return from_dict(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path}: {value!r} is not allowed (choose from {_type_name(tp)})")
        return value
    if origin in (Union, types.UnionType):
        for arm in get_args(tp):
            try:
                return _convert(arm, value, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
        (item,) = get_args(tp)[:1]
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{path}: expected null, got {value!r}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)  # 1e5 parses as a float; accept whole numbers
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported schema type {tp!r} at {path}")


def from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types.

    :param cls: the schema dataclass
    :param data: plain data, e.g. from ``yaml.safe_load`` or ``OmegaConf.to_container``
    :param path: dotted prefix used in error messages
    :raises ConfigError: naming the first offending key
    """
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"'{path}'" if path else "the config"
        raise ConfigError(f"{_join(path, unknown[0])}: unknown key in {where} (allowed: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, name)}: missing required key")
    try:
        return cls(**kwargs)
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{_join(path, str(err))}" if path else str(err)) from None


def explain_unknown_key(cls: type, message: str) -> str:
    """Add the allowed keys to a ``"<dotted.key>: unknown key"`` message."""
    key, sep, rest = message.partition(": ")
    if rest != "unknown key":
        return message
    parent, _, _ = key.lstrip("+~").rpartition(".")
    node: Any = cls
    for part in parent.split(".") if parent else []:
        node = get_type_hints(node).get(part) if dataclasses.is_dataclass(node) else None
    if not dataclasses.is_dataclass(node):
        return f"{key}: unknown key"
    allowed = ", ".join(sorted(f.name for f in dataclasses.fields(node)))
    where = f"'{parent}'" if parent else "the config"
    return f"{key}: unknown key in {where} (allowed: {allowed})"


def to_dict(obj: Any) -> Any:
    """Plain-data view of a schema object (inverse of :func:`from_dict`)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


__all__ = ["ConfigError", "explain_unknown_key", "from_dict", "to_dict"]
