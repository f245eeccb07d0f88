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
import json
import random
import time
import warnings
from collections.abc import Callable
from typing import Any

from ..core.context import RunContext
from ..core.errors import ConfigError, WorkbenchError
from ..measure.benchmark import BenchConfig
from ..models.registry import LoadedModel
from ..optimize import recipe_key
from ..passes import OnnxExport, OrtOptimize
from ..recipes.registry import Recipe
from ..store.runstore import RunStore
from ..tasks import pareto_front
from ..tasks.budget import Budget, violations
from .executors import Executor, make_executor
from .nas import ArchitectureSpace, architecture_search
from .result import (
    PREFER,
    SearchResult,
    TrialRecord,
    open_study,
    optuna_constraints,
    pick_best,
    resolve_prefer,
    study_storage,
    trial_quality,
)
from .space import TRAINING_FAMILIES, Family, SearchSpace, SearchSpaceError

__all__ = [
    "Family",
    "SearchSpace",
    "TRAINING_FAMILIES",
    "TrialRecord",
    "SearchResult",
    "SearchSpaceError",
    "search",
    "PREFER",
    "ArchitectureSpace",
]

_E, _O = OnnxExport(), OrtOptimize()


def _params_of(point: dict[str, Any]) -> dict[str, Any]:
    """A family's own parameters from an Optuna point ``{"family": f, "f.param": v}``."""
    return {k.split(".", 1)[1]: v for k, v in point.items() if k != "family"}


def _set_constraints(trial, values: list[float]) -> None:
    """The budget as Optuna constraints (feasible when all are <= 0): the sampler favours fitting regions."""
    for name, v in zip(("latency", "size", "accuracy_drop"), values):
        trial.set_constraint(name, v)
    trial.set_user_attr("constraints", values)


def search(
    model: LoadedModel | str,
    budget: Budget | None = None,
    space: SearchSpace | ArchitectureSpace | None = None,
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
    device_table: str | Any | None = None,
    on_screen: Callable[[dict], None] | None = None,
    **load_kw: Any,
) -> SearchResult:
    """Search ``space`` for the best candidate of ``model`` within ``budget``; see the module docstring.

    ``trials`` counts distinct recipes evaluated by this study (resumed trials included). ``executor``
    is "local" (default) or "ray" (with ``address``). ``bench.threads`` sets the inference threads.

    With an :class:`ArchitectureSpace` (``SearchSpace.default(["architecture"])``) the search builds students of
    other depths and widths instead (:mod:`workbench.search.nas`): ``trials`` caps the students trained,
    ``on_screen(row)`` hears each architecture timed untrained, and ``device_table`` (a probe bundle's
    ``latency_table.json``) judges the latency limit on that device's numbers.
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
    if device_table is not None and not isinstance(space, ArchitectureSpace):
        raise ConfigError(
            "A device latency table ('device_table') times the architectures of an architecture search; give "
            "space=SearchSpace.default(['architecture']) (CLI: --family architecture) with it."
        )
    if isinstance(space, ArchitectureSpace):
        from ..models.registry import load_model

        if executor != "local":
            raise ConfigError(
                "The architecture search runs on this machine (executor 'local'): its students are timed untrained "
                f"beside the baseline, one at a time, before any is trained. Got executor {executor!r}."
            )
        if isinstance(model, str):
            model = load_model(model, **load_kw)
        return architecture_search(
            model,
            budget,
            space,
            trials=trials,
            store=store if isinstance(store, RunStore) else RunStore(store),
            bench=bench or BenchConfig(),
            ctx=ctx,
            prefer=prefer,
            on_trial=on_trial,
            on_screen=on_screen,
            study_name=study_name,
            resume=resume,
            device_table=device_table,
        )
    # the executor first: an unreachable cluster fails before anything is loaded, run or recorded
    ex = make_executor(executor, address)
    try:
        from ..models.registry import load_model

        if isinstance(model, str):
            model = load_model(model, **load_kw)
        space = (space or SearchSpace.default()).for_model(model.baseline.kind)
        store = store if isinstance(store, RunStore) else RunStore(store)
        bench = bench or BenchConfig()
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
        study = open_study(name, storage, resume=resume, sampler=sampler)

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
                    _set_constraints(t, optuna_constraints(prev.candidate if prev else None, budget))
                    if prev is not None and prev.candidate is not None and prev.candidate.ok:
                        c = prev.candidate
                        study.tell(t, [trial_quality(c), c.get("p50_ms"), (c.get("size_bytes") or 0) / 1e6])
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
                _set_constraints(t, optuna_constraints(cand, budget))
                t.set_user_attr("verdict", rec.verdict)
                t.set_user_attr("violations", rec.to_dict()["violations"])
                if cand is not None and cand.ok and cand.get("p50_ms") is not None:
                    study.tell(t, [trial_quality(cand), cand.get("p50_ms"), (cand.get("size_bytes") or 0) / 1e6])
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
