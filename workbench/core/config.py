"""Pass configs: frozen dataclasses that validate themselves and round-trip through JSON.

Every technique has one config class. A config is registered under a short kebab-case ``kind``
(``"dynamic-int8"``); JSON round-trips rebuild only registered classes, never arbitrary ones,
so a recipe file cannot make the workbench instantiate anything it does not know.

>>> from workbench.passes import DynamicInt8
>>> cfg = DynamicInt8(per_channel=True)
>>> PassConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, ClassVar

from .errors import ConfigError, UnknownNameError

__all__ = ["PassConfig", "config_class", "config_kinds", "check_range", "check_choice", "check_reduce_range"]

_CONFIGS: dict[str, type[PassConfig]] = {}


def check_range(
    owner: str,
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    integer: bool = False,
    hi_open: bool = False,
    lo_open: bool = False,
) -> None:
    """Raise ConfigError unless ``value`` is a number in the given interval."""
    kind = "an int" if integer else "a float"
    lo_b = "(" if lo_open else "["
    hi_b = ")" if hi_open else "]"
    valid = f"{kind} in {lo_b}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{hi_b}"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(value)):
        raise ConfigError.out_of_range(owner, name, value, valid)
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ConfigError.out_of_range(owner, name, value, valid)
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ConfigError.out_of_range(owner, name, value, valid)


def check_choice(owner: str, name: str, value: Any, choices: tuple[Any, ...] | list[Any]) -> None:
    if value not in choices:
        raise ConfigError.out_of_range(owner, name, value, f"one of {', '.join(map(repr, choices))}")


def check_reduce_range(owner: str, value: Any) -> None:
    """``reduce_range`` is True, False or "auto" (7-bit weights exactly where u8s8 kernels saturate)."""
    if not (isinstance(value, bool) or value == "auto"):
        raise ConfigError.out_of_range(owner, "reduce_range", value, "True, False or 'auto'")


@dataclasses.dataclass(frozen=True)
class PassConfig:
    """Base of all pass configs. Subclasses are frozen dataclasses decorated with ``@config_class``."""

    kind: ClassVar[str] = ""
    version: ClassVar[int] = 1
    #: what the pass consumes and produces: "torch" or "onnx"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "torch"
    #: a one-line explanation shown in CLI listings and panel help
    summary: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError on an out-of-range or contradictory field."""

    # ---- JSON round trip -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        body = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"kind": self.kind, "version": self.version, **body}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any], where: str = "") -> PassConfig:
        """Rebuild a registered config. ``where`` prefixes error messages (e.g. "step 2")."""
        prefix = f"{where}: " if where else ""
        if not isinstance(data, dict) or "kind" not in data:
            raise ConfigError(f"{prefix}a pass must be a JSON object with a 'kind' field. Got {data!r}.")
        kind = data["kind"]
        if kind not in _CONFIGS:
            raise UnknownNameError("pass", kind, list(_CONFIGS))
        cls = _CONFIGS[kind]
        version = data.get("version", cls.version)
        if version != cls.version:
            raise ConfigError(
                f"{prefix}pass {kind!r} has version {version!r}; this workbench reads version {cls.version}."
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields) - {"kind", "version"})
        if unknown:
            raise ConfigError(
                f"{prefix}pass {kind!r} has no field {unknown[0]!r}. Valid fields: {', '.join(sorted(fields)) or '(none)'}."
            )
        hints = typing.get_type_hints(cls)
        kwargs = {k: _from_jsonable(hints.get(k), v) for k, v in data.items() if k in fields}
        try:
            return cls(**kwargs)
        except ConfigError as e:
            raise ConfigError(f"{prefix}{e}") from None

    @staticmethod
    def from_json(text: str) -> PassConfig:
        return PassConfig.from_dict(json.loads(text))

    def describe(self) -> str:
        """Short human label, e.g. ``dynamic-int8(per_channel=True)``."""
        defaults = type(self)() if _all_defaulted(type(self)) else None
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if defaults is None or getattr(defaults, f.name) != v:
                parts.append(f"{f.name}={v!r}")
        return f"{self.kind}({', '.join(parts)})" if parts else self.kind


def _all_defaulted(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def _from_jsonable(hint: Any, v: Any) -> Any:
    # lists in JSON become tuples where the field is a tuple (frozen + hashable configs)
    origin = typing.get_origin(hint)
    if isinstance(v, list) and (origin is tuple or hint is tuple):
        return tuple(v)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is tuple and isinstance(v, list):
                return tuple(v)
    return v


def config_class(cls: type[PassConfig]) -> type[PassConfig]:
    """Register a PassConfig subclass under its ``kind`` (decorator)."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} needs a non-empty 'kind'")
    if cls.kind in _CONFIGS and _CONFIGS[cls.kind] is not cls:
        raise TypeError(f"pass kind {cls.kind!r} registered twice")
    _CONFIGS[cls.kind] = cls
    return cls


def config_kinds() -> dict[str, type[PassConfig]]:
    return dict(_CONFIGS)
