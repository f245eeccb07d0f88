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

__all__ = [
    "PassConfig",
    "config_class",
    "config_kinds",
    "check_range",
    "check_choice",
    "check_reduce_range",
    "check_types",
]

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
        check_types(self)
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


_HINTS: dict[type, dict[str, Any]] = {}


def check_types(cfg: Any) -> None:
    """Every field of a config dataclass has its annotated type, or a ConfigError names the field.

    ``op_types="MatMul"`` (a string where a tuple of names is wanted) would otherwise be iterated letter by
    letter, and ``per_channel="no"`` would count as true. Lists given for tuple fields become tuples (configs are
    frozen and hashable).
    """
    cls = type(cfg)
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    hints = _HINTS[cls]
    owner = cls.__name__
    for f in dataclasses.fields(cfg):
        hint = hints.get(f.name)
        if hint is None:
            continue
        value = getattr(cfg, f.name)
        if isinstance(value, list) and _wants_tuple(hint):
            value = tuple(value)
            object.__setattr__(cfg, f.name, value)
        if not _conforms(value, hint):
            extra = ""
            if isinstance(value, str) and _wants_tuple(hint):
                extra = f" (a single string is not a list of names: write ({value!r},))"
            raise ConfigError(
                f"The {f.name!r} parameter of {owner} must be {_type_text(hint)}. Got {value!r} "
                f"({type(value).__name__}) instead{extra}."
            )


def _wants_tuple(hint: Any) -> bool:
    if typing.get_origin(hint) is tuple or hint is tuple:
        return True
    return any(_wants_tuple(a) for a in typing.get_args(hint)) if _is_union(hint) else False


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _conforms(value: Any, hint: Any) -> bool:
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    if _is_union(hint):
        return any(_conforms(value, a) for a in typing.get_args(hint))
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(args) == len(value) and all(_conforms(v, a) for v, a in zip(value, args))
    if origin in (list, dict):
        return isinstance(value, origin)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this check does not know: the config's own validate() decides


def _type_text(hint: Any) -> str:
    args = typing.get_args(hint) if _is_union(hint) else ()
    if bool in args and all(a is bool or typing.get_origin(a) is typing.Literal for a in args):
        literals = [v for a in args if a is not bool for v in typing.get_args(a)]
        return "True, False or " + " or ".join(map(repr, literals))
    if _is_union(hint):
        return " or ".join(_type_text(a) for a in typing.get_args(hint))
    if hint is None or hint is type(None):
        return "None"
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {getattr(args[0], '__name__', str(args[0]))}"
        return "a tuple (" + ", ".join(_type_text(a) for a in args) + ")"
    names = {bool: "a bool (True or False)", int: "an int", float: "a float", str: "a str"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


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
