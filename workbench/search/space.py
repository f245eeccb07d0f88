"""The search space: families of recipes (precision, sparsity, training) and their parameter grids."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.config import PassConfig, config_kinds
from ..core.errors import ConfigError, WorkbenchError
from ..passes import Cast, DynamicInt8, Int4WeightOnly, OnnxExport, OrtOptimize, StaticInt8
from ..recipes.registry import INT8_FUSIONS, Recipe
from .nas import ARCHITECTURE, ArchitectureSpace

_E, _O = OnnxExport(), OrtOptimize()


class SearchSpaceError(WorkbenchError, ValueError):
    """The search space is empty or names a family / parameter that does not exist."""


@dataclass(frozen=True)
class Family:
    """One kind of recipe and the knobs to search over. ``build(params)`` returns the pass chain."""

    name: str
    params: dict[str, tuple[Any, ...]]
    build: Callable[[dict[str, Any]], tuple[PassConfig, ...]]
    description: str = ""

    def combos(self) -> list[dict[str, Any]]:
        keys = sorted(self.params)
        return [dict(zip(keys, vals)) for vals in itertools.product(*(self.params[k] for k in keys))]

    def recipe(self, params: dict[str, Any]) -> Recipe:
        label = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
        return Recipe(f"{self.name}({label})" if label else self.name, self.build(params), self.description)


def _fused(p: dict, opt: OrtOptimize = _O) -> tuple[PassConfig, ...]:
    return (_E, opt) if p.get("fused", True) else (_E,)


def default_families() -> dict[str, Family]:
    fams = [
        Family("fp32", {"fused": (False, True)}, lambda p: _fused(p), "ONNX Runtime FP32"),
        Family(
            "int8-dynamic",
            {"per_channel": (True, False), "fused": (True, False)},
            lambda p: (*_fused(p, INT8_FUSIONS), DynamicInt8(per_channel=p["per_channel"])),
            "dynamic INT8",
        ),
        Family(
            "int8-static",
            {
                "calibration": ("minmax", "percentile", "entropy"),
                "format": ("qdq", "qoperator"),
                "exclude": ("auto", "none"),
            },
            lambda p: (_E, StaticInt8(calibration=p["calibration"], format=p["format"], exclude=p["exclude"])),
            "static INT8 with calibration",
        ),
        Family(
            "int4",
            {"block_size": (32, 128), "accuracy_level": (4, 0)},
            lambda p: (_E, Int4WeightOnly(block_size=p["block_size"], accuracy_level=p["accuracy_level"])),
            "4-bit weight-only MatMuls",
        ),
        Family("half", {"dtype": ("bf16", "fp16")}, lambda p: (Cast(p["dtype"]),), "16-bit floats in PyTorch"),
    ]
    kinds = config_kinds()
    # pruning and distillation join the space once their passes are registered
    if "magnitude-prune" in kinds:
        fams.append(
            Family(
                "magnitude-prune",
                {"sparsity": (0.3, 0.5)},
                lambda p: (
                    PassConfig.from_dict({"kind": "magnitude-prune", "sparsity": p["sparsity"]}),
                    _E,
                    DynamicInt8(),
                ),
                "unstructured magnitude pruning, then dynamic INT8",
            )
        )
    if "structured-prune" in kinds:
        fams.append(
            Family(
                "structured-prune",
                {"sparsity": (0.25, 0.5)},
                lambda p: (
                    PassConfig.from_dict({"kind": "structured-prune", "sparsity": p["sparsity"]}),
                    _E,
                    DynamicInt8(),
                ),
                "heads / FFN neurons / channels removed and fine-tuned, then INT8",
            )
        )
    if "distill" in kinds:
        fams.append(
            Family(
                "distill",
                {"student_layers": (3, 4)},
                lambda p: (
                    PassConfig.from_dict({"kind": "distill", "student_layers": p["student_layers"]}),
                    _E,
                    DynamicInt8(),
                ),
                "a student with fewer layers trained from the model, then INT8",
            )
        )
    out = {}
    for f in fams:  # a family whose passes reject these values (another engineer's fields differ) is left out
        try:
            for c in f.combos():
                f.build(c)
        except (ConfigError, WorkbenchError):
            continue
        out[f.name] = f
    return out


#: families that train (minutes per trial) join a search only when named: ``--family distill``
TRAINING_FAMILIES = ("structured-prune", "distill", ARCHITECTURE)


def family_names() -> list[str]:
    """Every family a search can name: the recipe families and the architecture search."""
    return [*default_families(), ARCHITECTURE]


class SearchSpace:
    """Families of recipes and their knobs.

    >>> space = SearchSpace.default(families=["int8-dynamic", "int4"])
    >>> space.size
    8
    """

    def __init__(self, families: dict[str, Family] | Sequence[Family]):
        fams = dict(families) if isinstance(families, dict) else {f.name: f for f in families}
        for f in fams.values():
            for k, v in f.params.items():
                if not v:
                    raise SearchSpaceError(
                        f"Parameter {k!r} of family {f.name!r} has no values: the search space "
                        "is empty. Give at least one value."
                    )
        if not fams:
            raise SearchSpaceError(
                "The search space is empty: give at least one family with at least one value per "
                f"parameter. Known families: {', '.join(default_families())}."
            )
        self.families = fams

    @classmethod
    def default(
        cls, families: Sequence[str] | None = None, **overrides: Sequence[Any]
    ) -> SearchSpace | ArchitectureSpace:
        """The built-in space, optionally restricted to ``families`` and with parameter values replaced by
        ``family__param=(values...)`` overrides, e.g. ``int8_static__calibration=("minmax",)``.

        ``["architecture"]`` gives the architecture search's space (:class:`ArchitectureSpace`, overrides
        ``architecture__width=(1.0, 0.5)`` etc.); it searches on its own, not mixed with recipe families."""
        if families is not None and ARCHITECTURE in list(families):
            others = [f for f in families if f != ARCHITECTURE]
            if others:
                raise SearchSpaceError(
                    f"The 'architecture' family searches students of other shapes on its own (each one timed "
                    f"untrained, then trained); it cannot be mixed with {', '.join(map(repr, others))} in one "
                    "search. Run one search with --family architecture and another with the rest."
                )
            kw = {}
            for key, values in overrides.items():
                fam, _, param = key.partition("__")
                if fam != ARCHITECTURE or param not in ArchitectureSpace.__dataclass_fields__ or param == "name":
                    fields = [f for f in ArchitectureSpace.__dataclass_fields__ if f != "name"]
                    raise SearchSpaceError(
                        f"Unknown search parameter {key!r}: the architecture space takes architecture__<field> "
                        f"with a field in {', '.join(fields)}."
                    )
                kw[param] = tuple(values) if isinstance(values, (list, tuple)) else values
            return ArchitectureSpace(**kw)
        known = default_families()
        if families is None:
            known = {k: f for k, f in known.items() if k not in TRAINING_FAMILIES}
        else:
            families = list(families)
            if not families:
                raise SearchSpaceError(
                    f"The search space is empty: 'families' is []. Known families: {', '.join(known)}."
                )
            bad = [f for f in families if f not in known]
            if bad:
                raise SearchSpaceError(
                    f"Unknown search family {bad[0]!r}. Known families: {', '.join(family_names())}."
                )
            known = {k: known[k] for k in families}
        for key, values in overrides.items():
            fam, _, param = key.partition("__")
            fam = fam.replace("_", "-")
            if fam not in known or param not in known[fam].params:
                raise SearchSpaceError(
                    f"Unknown search parameter {key!r}: use family__param with a family in "
                    f"{', '.join(known)} and one of its parameters."
                )
            f = known[fam]
            known[fam] = Family(f.name, {**f.params, param: tuple(values)}, f.build, f.description)
        return cls(known)

    def for_model(self, start_kind: str) -> SearchSpace:
        """Drop families that cannot start from this kind of model (PyTorch passes on an ONNX file)."""
        keep = {}
        for name, f in self.families.items():
            combos = f.combos()
            r = f.recipe(combos[0])
            a = r.adapted_to(start_kind)
            try:
                if a is not None:
                    a.validate_for(start_kind)
            except WorkbenchError:
                continue
            keep[name] = f
        if not keep:
            raise SearchSpaceError(
                f"The search space is empty for a {start_kind} model: none of the families "
                f"{', '.join(self.families)} applies to it."
            )
        return SearchSpace(keep)

    @property
    def size(self) -> int:
        return sum(len(f.combos()) for f in self.families.values())

    def points(self) -> list[dict[str, Any]]:
        """Every point as Optuna params: ``{"family": name, "name.param": value, ...}``."""
        out = []
        for name, f in self.families.items():
            for c in f.combos():
                out.append({"family": name, **{f"{name}.{k}": v for k, v in c.items()}})
        return out

    def suggest(self, trial) -> tuple[dict[str, Any], Recipe]:
        """Ask an Optuna trial for a point (define-by-run: each family's knobs are conditional)."""
        name = trial.suggest_categorical("family", list(self.families))
        f = self.families[name]
        params = {k: trial.suggest_categorical(f"{name}.{k}", list(v)) for k, v in sorted(f.params.items())}
        return params, f.recipe(params)

    def fingerprint(self) -> str:
        pts = [
            (
                p["family"],
                self.families[p["family"]]
                .recipe({k.split(".", 1)[1]: v for k, v in p.items() if k != "family"})
                .to_dict()["steps"],
            )
            for p in self.points()
        ]
        return hashlib.sha256(json.dumps(pts, sort_keys=True, default=str).encode()).hexdigest()[:10]
