"""Search under a device budget: the best candidate that fits, the Pareto front, and why the rest were rejected.

The strategy is Optuna's (multi-objective TPE with the budget as constraints), not a home-made one.
The study lives in a SQLite file beside the run store, so an interrupted search resumes where it
stopped; candidates already in the run store are reused, not rebuilt. Every trial is reported as it
finishes (``on_trial`` + the run context), and each rejected candidate records which constraint it
broke and by how much.

Which candidate is "best": with a latency limit, the most accurate one that fits ("the most
accurate model that runs in under 100 ms"); without one, the fastest that fits (``prefer`` overrides).

>>> from workbench.budget import Budget
>>> res = search("digits-cnn", Budget(max_accuracy_drop=0.01), trials=6, store=":memory:")  # doctest: +SKIP
>>> print(res.explain())                                                                       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .benchmark import BenchConfig
from .budget import Budget, Violation, violations
from .candidate import Candidate
from .config import PassConfig, config_kinds
from .context import RunContext
from .errors import ConfigError, WorkbenchError
from .executors import Executor, make_executor
from .models import LoadedModel
from .optimize import recipe_key
from .passes import Cast, DynamicInt8, Int4WeightOnly, OnnxExport, OrtOptimize, StaticInt8
from .recipes import INT8_FUSIONS, Recipe
from .store import RunStore
from .tasks import pareto_front, quality

__all__ = [
    "Family",
    "SearchSpace",
    "TRAINING_FAMILIES",
    "TrialRecord",
    "SearchResult",
    "SearchSpaceError",
    "search",
    "PREFER",
]

PREFER = ("auto", "accuracy", "latency", "size")
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
TRAINING_FAMILIES = ("structured-prune", "distill")


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
    def default(cls, families: Sequence[str] | None = None, **overrides: Sequence[Any]) -> SearchSpace:
        """The built-in space, optionally restricted to ``families`` and with parameter values replaced by
        ``family__param=(values...)`` overrides, e.g. ``int8_static__calibration=("minmax",)``."""
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
                raise SearchSpaceError(f"Unknown search family {bad[0]!r}. Known families: {', '.join(known)}.")
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


@dataclass
class TrialRecord:
    """One finished trial: the recipe, its candidate, and the budget verdict."""

    number: int
    family: str
    params: dict[str, Any]
    recipe: Recipe
    candidate: Candidate | None
    violations: list[Violation]
    reused: bool = False
    elapsed_s: float = 0.0

    @property
    def fits(self) -> bool:
        return self.candidate is not None and self.candidate.ok and not self.violations

    @property
    def verdict(self) -> str:
        if self.candidate is None or not self.candidate.ok:
            err = (self.candidate.error or "").splitlines()[0] if self.candidate and self.candidate.error else ""
            return f"failed: {err}" if err else "failed"
        return "fits" if not self.violations else "rejected: " + "; ".join(map(str, self.violations))

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "trial": self.number,
            "family": self.family,
            "params": self.params,
            "recipe": self.recipe.name,
            "candidate_id": c.id if c else None,
            "status": c.status if c else None,
            "p50_ms": c.get("p50_ms") if c else None,
            "size_mb": (c.get("size_bytes") or 0) / 1e6 if c else None,
            "accuracy": c.get("accuracy") if c else None,
            "accuracy_drop": c.get("accuracy_drop") if c else None,
            "fidelity": c.get("fidelity") if c else None,
            "fits": self.fits,
            "verdict": self.verdict,
            "violations": [
                {"constraint": v.constraint, "limit": v.limit, "value": v.value, "excess": v.excess}
                for v in self.violations
            ],
            "reused": self.reused,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _quality(c: Candidate) -> float:
    """The candidate's task quality (higher is better), 0 where it has none: an Optuna objective needs a number."""
    q = quality(c)
    return 0.0 if q is None else q


def _closeness(t: TrialRecord) -> float:
    """How far a rejected candidate is from fitting: the sum of relative excesses (0 = fits)."""
    if not t.candidate or not t.candidate.ok:
        return float("inf")
    return sum((v.excess or 0) / max(v.limit or 1e-9, 1e-9) for v in t.violations)


@dataclass
class SearchResult:
    model: str
    budget: Budget
    baseline: Candidate
    trials: list[TrialRecord]
    best: Candidate | None
    front: list[Candidate]
    prefer: str
    study_name: str
    storage: str | None
    space_size: int
    elapsed_s: float = 0.0
    executor: str = "local"

    @property
    def candidates(self) -> list[Candidate]:
        seen, out = set(), []
        for c in [self.baseline, *(t.candidate for t in self.trials if t.candidate)]:
            if c.id not in seen:
                seen.add(c.id)
                out.append(c)
        return out

    @property
    def rejected(self) -> list[TrialRecord]:
        return [t for t in self.trials if not t.fits]

    def closest(self, n: int = 3) -> list[TrialRecord]:
        """The rejected candidates nearest to fitting (smallest relative excess over the limits)."""
        measured = [t for t in self.rejected if t.candidate is not None and t.candidate.ok]
        return sorted(measured, key=_closeness)[:n]

    def rows(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.trials]

    def frame(self):
        import pandas as pd

        return pd.DataFrame.from_records(self.rows())

    def explain(self) -> str:
        """A few lines: what was searched, the answer (or that nothing fits, with the closest), the front."""
        n_fit = sum(t.fits for t in self.trials)
        lines = [
            f"Searched {len(self.trials)} recipes (space of {self.space_size}) for {self.model} under "
            f"{self.budget.describe()} in {self.elapsed_s:.0f} s: {n_fit} fit."
        ]
        if self.best is not None:
            b = self.best
            lines.append(
                f"Best ({'most accurate' if self.prefer == 'accuracy' else 'fastest' if self.prefer == 'latency' else 'smallest'} "
                f"that fits): {b.recipe_name} [{b.id}] p50 {b.get('p50_ms', 0):.3g} ms, "
                f"{(b.get('size_bytes') or 0) / 1e6:.3g} MB, quality {_quality(b):.4f}"
                + (f", drop {100 * b.get('accuracy_drop'):+.2f} points" if b.get("accuracy_drop") is not None else "")
                + "."
            )
        else:
            lines.append(f"Nothing fits the budget ({self.budget.describe()}). Closest candidates:")
            for t in self.closest():
                lines.append(f"  - {t.recipe.name} [{t.candidate.id}]: " + "; ".join(map(str, t.violations)))
            if not self.closest():
                lines.append("  (no candidate could be measured)")
        lines.append(f"Pareto front (accuracy / p50 / size): {', '.join(c.recipe_name for c in self.front) or '-'}.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "budget": self.budget.to_dict(),
            "prefer": self.prefer,
            "baseline_id": self.baseline.id,
            "best_id": self.best.id if self.best else None,
            "best_recipe": self.best.recipe_name if self.best else None,
            "front_ids": [c.id for c in self.front],
            "trials": self.rows(),
            "study": self.study_name,
            "storage": self.storage,
            "space_size": self.space_size,
            "elapsed_s": self.elapsed_s,
            "executor": self.executor,
            "closest": [t.to_dict() for t in self.closest()] if self.best is None else [],
        }


def resolve_prefer(prefer: str, budget: Budget) -> str:
    """What "best" means: ``"auto"`` is the most accurate that fits when there is a latency limit, else the
    fastest that fits."""
    if prefer != "auto":
        return prefer
    return "accuracy" if budget.max_latency_ms is not None else "latency"


def pick_best(cands: list[Candidate], budget: Budget, prefer: str) -> Candidate | None:
    fits = [c for c in cands if c.ok and c.get("p50_ms") is not None and not violations(c, budget)]
    if not fits:
        return None
    if prefer == "accuracy":
        return max(fits, key=lambda c: (round(_quality(c), 6), -c.get("p50_ms")))
    if prefer == "size":
        return min(fits, key=lambda c: (c.get("size_bytes") or 0, -_quality(c)))
    return min(fits, key=lambda c: (c.get("p50_ms"), -_quality(c)))


def _constraints(c: Candidate | None, budget: Budget) -> list[float]:
    """Optuna constraint values (<= 0 means satisfied): excess over each limit, in relative units."""
    if c is None or not c.ok:
        return [1.0, 1.0, 1.0]
    out = []
    for limit, value in (
        (budget.max_latency_ms, c.get("p50_ms")),
        (budget.max_size_mb, (c.get("size_bytes") or 0) / 1e6),
        (budget.max_accuracy_drop, c.get("accuracy_drop")),
    ):
        if limit is None or value is None:
            out.append(-1.0)
        else:
            out.append((value - limit) / max(limit, 1e-3))
    return out


def _params_of(point: dict[str, Any]) -> dict[str, Any]:
    """A family's own parameters from an Optuna point ``{"family": f, "f.param": v}``."""
    return {k.split(".", 1)[1]: v for k, v in point.items() if k != "family"}


def _set_constraints(trial, values: list[float]) -> None:
    """The budget as Optuna constraints (feasible when all are <= 0): the sampler favours fitting regions."""
    for name, v in zip(("latency", "size", "accuracy_drop"), values):
        trial.set_constraint(name, v)
    trial.set_user_attr("constraints", values)


def study_storage(store: RunStore) -> str | None:
    if store.path == ":memory:":
        return None
    return f"sqlite:///{store.path.parent / 'search.sqlite'}"


def search(
    model: LoadedModel | str,
    budget: Budget | None = None,
    space: SearchSpace | None = None,
    *,
    trials: int = 16,
    store: RunStore | str | None = None,
    executor: str | Executor = "local",
    address: str | None = None,
    bench: BenchConfig | None = None,
    ctx: RunContext | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    prefer: str = "auto",
    study_name: str | None = None,
    resume: bool = True,
    seed: int = 0,
    **load_kw: Any,
) -> SearchResult:
    """Search ``space`` for the best candidate of ``model`` within ``budget``; see the module docstring.

    ``trials`` counts distinct recipes evaluated by this study (resumed trials included). ``executor``
    is "local" (default) or "ray" (with ``address``). ``budget.threads`` sets the inference threads.
    """
    import optuna
    from optuna.trial import TrialState

    budget = budget or Budget()
    if prefer not in PREFER:
        raise ConfigError.out_of_range("search", "prefer", prefer, f"one of {', '.join(map(repr, PREFER))}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError.out_of_range("search", "trials", trials, "an int >= 1")
    prefer = resolve_prefer(prefer, budget)
    ctx = ctx or RunContext()
    # the executor first: an unreachable cluster fails before anything is loaded, run or recorded
    ex = make_executor(executor, address)
    try:
        from .models import load_model

        if isinstance(model, str):
            model = load_model(model, **load_kw)
        space = (space or SearchSpace.default()).for_model(model.baseline.kind)
        store = store if isinstance(store, RunStore) else RunStore(store)
        bench = bench or BenchConfig()
        if budget.threads is not None and bench.threads != budget.threads:
            bench = BenchConfig(warmup=bench.warmup, runs=bench.runs, threads=budget.threads)
        t_start, wall0 = time.time(), time.monotonic()

        storage = study_storage(store)
        name = study_name or (
            f"{model.name}-{model.fingerprint[:8]}-{space.fingerprint()}-"
            f"{hashlib.sha256(json.dumps([budget.to_dict(), bench.warmup, bench.runs, bench.threads, prefer]).encode()).hexdigest()[:8]}"
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():  # multivariate/group are flagged experimental; they suit conditional spaces
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=min(8, max(2, trials // 2)), multivariate=True, group=True
            )
        if not resume and storage is not None:
            try:
                optuna.delete_study(study_name=name, storage=storage)
            except KeyError:
                pass
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            load_if_exists=True,
            directions=["maximize", "minimize", "minimize"],
        )

        baseline = ex.baseline(model, store=store, bench=bench, ctx=ctx)
        records: list[TrialRecord] = []
        done_keys: dict[str, TrialRecord] = {}
        # resume: trials finished by an earlier (interrupted) run count; ones left running are closed as failed
        for ft in study.get_trials(deepcopy=False):
            if ft.state == TrialState.RUNNING:
                study.tell(ft.number, state=TrialState.FAIL, skip_if_finished=True)
            elif (
                ft.state in (TrialState.COMPLETE, TrialState.FAIL)
                and "key" in ft.user_attrs
                and not ft.user_attrs.get("duplicate")
                and ft.user_attrs["key"] not in done_keys
            ):
                try:
                    cand = store.get(ft.user_attrs["candidate_id"])
                except WorkbenchError:
                    continue
                fam = ft.params.get("family", "?")
                params = {k.split(".", 1)[1]: v for k, v in ft.params.items() if k != "family"}
                rec = TrialRecord(
                    ft.number,
                    fam,
                    params,
                    space.families[fam].recipe(params) if fam in space.families else Recipe(cand.recipe_name, ()),
                    cand,
                    violations(cand, budget),
                    reused=True,
                )
                done_keys[ft.user_attrs["key"]] = rec
                records.append(rec)

        def key_of(r: Recipe) -> str:
            return recipe_key(model, r, bench)

        unvisited = [p for p in space.points()]
        random.Random(seed).shuffle(unvisited)
        # points that build the same candidate (e.g. an export step skipped for an ONNX model) count once
        unique = {key_of(space.families[p["family"]].recipe(_params_of(p))) for p in space.points()}
        target = min(trials, len(unique))
        ctx.begin(f"{model.name} / search", total=target, message=budget.describe())
        ctx.step(len(records), message=f"{len(records)} trials resumed" if records else "")
        attempts = 0
        while len(done_keys) < target:
            batch: list[tuple[Any, str, dict, Recipe, str]] = []
            in_batch: set[str] = set()
            while len(batch) < max(1, ex.slots) and len(done_keys) + len(batch) < target:
                attempts += 1
                t = study.ask()
                params, recipe = space.suggest(t)
                fam = t.params["family"]
                k = key_of(recipe)
                if k in done_keys or k in in_batch:
                    prev = done_keys.get(k)
                    t.set_user_attr("duplicate", True)
                    _set_constraints(t, _constraints(prev.candidate if prev else None, budget))
                    if prev is not None and prev.candidate is not None and prev.candidate.ok:
                        c = prev.candidate
                        study.tell(t, [_quality(c), c.get("p50_ms"), (c.get("size_bytes") or 0) / 1e6])
                    else:
                        study.tell(t, state=TrialState.FAIL)
                    # the sampler keeps proposing points already measured: steer it to an unvisited one
                    while unvisited:
                        p = unvisited.pop()
                        pk = key_of(space.families[p["family"]].recipe(_params_of(p)))
                        if pk not in done_keys and pk not in in_batch:
                            study.enqueue_trial(p, skip_if_exists=False)
                            break
                    if attempts > 20 * target + 100:
                        break
                    continue
                in_batch.add(k)
                batch.append((t, fam, params, recipe, k))
            if not batch:
                break
            t0 = time.monotonic()
            for i, cand in ex.run(model, [b[3] for b in batch], store=store, baseline=baseline, bench=bench, ctx=ctx):
                t, fam, params, recipe, k = batch[i]
                viol = violations(cand, budget) if cand is not None else []
                rec = TrialRecord(
                    t.number,
                    fam,
                    params,
                    recipe,
                    cand,
                    viol,
                    reused=cand is not None and cand.created_at < t_start,
                    elapsed_s=time.monotonic() - t0,
                )
                t.set_user_attr("key", k)
                t.set_user_attr("candidate_id", cand.id if cand else None)
                _set_constraints(t, _constraints(cand, budget))
                t.set_user_attr("verdict", rec.verdict)
                t.set_user_attr("violations", rec.to_dict()["violations"])
                if cand is not None and cand.ok and cand.get("p50_ms") is not None:
                    study.tell(t, [_quality(cand), cand.get("p50_ms"), (cand.get("size_bytes") or 0) / 1e6])
                else:
                    study.tell(t, state=TrialState.FAIL)
                done_keys[k] = rec
                records.append(rec)
                # the passes moved the context to their own stages: report search progress afresh
                ctx.begin(f"{model.name} / search", total=target)
                ctx.step(len(done_keys), message=f"{rec.recipe.name}: {rec.verdict}")
                if on_trial:
                    on_trial(rec)

        cands = [baseline, *(r.candidate for r in records if r.candidate is not None)]
        front = pareto_front([c for c in {c.id: c for c in cands}.values() if c.status != "intermediate"])
        return SearchResult(
            model.name,
            budget,
            baseline,
            records,
            pick_best(cands, budget, prefer),
            front,
            prefer,
            name,
            storage,
            space.size,
            time.monotonic() - wall0,
            ex.name,
        )
    finally:
        ex.close()
