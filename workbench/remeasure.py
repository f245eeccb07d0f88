"""Re-time stored candidates beside their baseline: ``workbench remeasure IDS`` and the dashboard's Re-time button.

A latency marked noisy (measured while another program had the cores), or one a user doubts, is measured again
the way the pipeline measures: the candidate and its FP32 baseline in alternating rounds, the machine's state
read around it. The new timing is recorded as a re-timing of the candidate (``RunStore.add_retiming``): the
candidate's record and artifact are not touched, and every reader (tables, charts, the report, the search's
verdicts) sees the newest timing, with the first one kept under ``metrics["first_timing"]``.

>>> remeasure(["3f2a9c1b7e4d"], store=RunStore())   # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .core.artifact import Artifact, edge_artifact, file_sha256, onnx_artifact
from .core.context import RunContext
from .core.errors import WorkbenchError
from .measure.benchmark import BenchConfig, measure_latency, min_time_seconds
from .models.registry import LoadedModel
from .optimize import BASELINE, artifact_intact, scored_on, usual_speed
from .passes import PassJob, apply_pass
from .recipes.registry import Recipe
from .store.candidate import Candidate
from .store.runstore import RunStore

__all__ = ["remeasure", "Retiming", "RemeasureError", "noisy_ids", "RETIME_RUNS", "RETIME_MIN_S", "careful_bench"]

#: timed calls per runner of a re-timing: four times the pipeline's 50, for a p50 that repeats (bench_timing.py)
RETIME_RUNS = 200
#: seconds of timed calls per runner of a re-timing at least (a fast model gets more than RETIME_RUNS calls)
RETIME_MIN_S = 3.0
#: rounds of a re-timing: the candidate and its baseline alternate ten times
RETIME_ROUNDS = 10


#: what a re-timing shows before and after
_COMPARED = ("p50_ms", "p50_usual_ms", "speedup", "noisy", "noise")


class RemeasureError(WorkbenchError):
    """A candidate that cannot be re-timed (failed, unknown, its artifact altered, its model not loadable)."""


@dataclass(frozen=True)
class Retiming:
    """One re-timed candidate: before and after."""

    candidate: Candidate  # as it reads now (the new timing in its metrics)
    before: dict[str, Any]  # p50_ms, speedup, noisy of the timing it replaced

    @property
    def after(self) -> dict[str, Any]:
        return {k: self.candidate.get(k) for k in _COMPARED}


def careful_bench(runs: int | None = None, min_time_s: float | None = None, base: BenchConfig | None = None):
    """A re-timing's settings (on top of ``base``'s threads, warm-ups, waits): at least RETIME_RUNS calls and
    RETIME_MIN_S seconds per runner, in RETIME_ROUNDS rounds. ``$WORKBENCH_MIN_TIME_S``, when set, is the minimum
    time here too (the user's own choice of how long a runner is timed)."""
    if min_time_s is None:
        min_time_s = min_time_seconds(default=RETIME_MIN_S)
    base = base or BenchConfig()
    runs = runs or max(base.runs, RETIME_RUNS)
    return replace(base, runs=runs, rounds=max(base.rounds, RETIME_ROUNDS), min_time_s=min_time_s)


def _baseline_of(store: RunStore, c: Candidate) -> Candidate:
    """The root of a candidate's lineage: the FP32 baseline it was compared with."""
    chain = store.lineage(c.id)
    root = chain[0] if chain else c
    if root.recipe_name != BASELINE:
        raise RemeasureError(f"Candidate {c.id} ({c.recipe_name}) has no baseline in its lineage to be timed beside.")
    return root


def _load(base: Candidate) -> LoadedModel:
    """The model a baseline was measured on, loaded as it was then (its recorded load_model arguments)."""
    from .models.registry import load_model

    spec = dict(base.notes.get("load") or {})
    name = spec.pop("name", None) or base.model
    spec.pop("in_memory_data", None)
    if not spec.get("data") and (base.notes.get("data") or {}).get("source"):
        spec["data"] = base.notes["data"]["source"]  # a record from before the load arguments were kept
    model = load_model(name, **{k: v for k, v in spec.items() if v is not None})
    if not scored_on([base], model):
        raise RemeasureError(
            f"The data {base.model!r} was measured on (sha256 {(base.notes.get('data') or {}).get('sha256', '?')[:12]})"
            " is not the data loaded now: the file changed since. Re-run `workbench optimize` on it instead."
        )
    return model


def _artifact(model: LoadedModel, c: Candidate, workdir: Path, ctx: RunContext, threads: int) -> Artifact:
    """A runnable artifact of a stored candidate: its recorded ONNX file (sha256 checked), the loaded baseline, or a
    PyTorch candidate rebuilt from its recipe (its weights file alone does not say its module's structure) and
    checked against the recorded weights' sha256."""
    if c.recipe_name == BASELINE or not c.recipe.get("steps"):
        return model.baseline
    if not artifact_intact(c):
        raise RemeasureError(
            f"The artifact of candidate {c.id} ({c.artifact_path}) is missing or no longer matches its recorded "
            "sha256: it cannot be re-timed. Re-run its recipe (workbench optimize ... --no-reuse)."
        )
    path = Path(c.artifact_path) if c.artifact_path else None
    if path is not None and path.suffix == ".onnx":
        return onnx_artifact(path, **c.notes)
    if path is not None and c.runtime in ("executorch", "litert"):  # a .pte / .tflite: its own runtime runs it
        return edge_artifact(path, model.baseline.input_names, **c.notes)
    if c.runtime != "torch":
        raise RemeasureError(
            f"Candidate {c.id} runs on {c.runtime}; re-timing supports ONNX Runtime, ExecuTorch, LiteRT and PyTorch "
            "candidates."
        )
    recipe = Recipe.from_dict(c.recipe).adapted_to(model.baseline.kind)
    art = model.baseline
    for i, step in enumerate(recipe.steps if recipe else ()):
        job = PassJob(model=model, ctx=ctx, workdir=workdir / f"step{i}", threads=threads, stage=f"rebuild {step.kind}")
        art = apply_pass(art, step, job)
    if c.artifact_sha256 and art.path is None:
        from safetensors.torch import save_model

        f = workdir / "rebuilt.safetensors"
        save_model(art.module, str(f))
        if file_sha256(f) != c.artifact_sha256:
            raise RemeasureError(
                f"Candidate {c.id} ({c.recipe_name}) rebuilt from its recipe does not give the recorded weights "
                "(sha256 differs): the libraries or the model changed since. Re-run it with workbench optimize."
            )
    return art


def remeasure(
    ids: Sequence[str] | str,
    *,
    store: RunStore | str | None = None,
    model: LoadedModel | None = None,
    bench: BenchConfig | None = None,
    ctx: RunContext | None = None,
) -> list[Retiming]:
    """Re-time the candidates ``ids`` beside their baseline and record the new timings; returns before / after.

    The thread count is each candidate's own (its record's), so the new timing replaces a like-for-like one.
    ``bench`` defaults to :func:`careful_bench` (a re-timing is the careful one: at least :data:`RETIME_RUNS` calls
    and :data:`RETIME_MIN_S` seconds per runner).
    ``model``: the loaded model, if at hand (the dashboard); else each baseline's recorded load arguments are
    used. Raises RemeasureError (naming the candidate) before timing anything when an id cannot be re-timed.
    """
    ids = [ids] if isinstance(ids, str) else list(ids)
    if not ids:
        raise RemeasureError("remeasure needs at least one candidate id (workbench runs lists them).")
    store = store if isinstance(store, RunStore) else RunStore(store)
    ctx = ctx or RunContext()
    cands = []
    for i in ids:
        c = store.get(i)
        if not c.ok or not c.get("p50_ms"):
            raise RemeasureError(f"Candidate {c.id} is {c.status} without a latency: only a measured one is re-timed.")
        if c.notes.get("measured_on") == "device":
            raise RemeasureError(
                f"Candidate {c.id} was measured on {c.notes.get('device', 'a device')}: re-time it there with its "
                "bundle's run_bench.py and import the result."
            )
        cands.append(c)
    loaded: dict[str, LoadedModel] = {}
    out: list[Retiming] = []
    for c in cands:
        base = _baseline_of(store, c)
        cfg = replace(bench or careful_bench(), threads=c.threads or (bench.threads if bench else None))
        if model is not None and model.name == c.model:
            m = model
        else:
            m = loaded.get(base.id) or _load(base)
            loaded[base.id] = m
        threads = cfg.effective_threads
        with tempfile.TemporaryDirectory(prefix="wb-retime-") as d:
            art = _artifact(m, c, Path(d), ctx, threads)
            runner = art.runner(threads, session_config=cfg.session_config())
            against = None if art is m.baseline else m.baseline.runner(threads, session_config=cfg.session_config())
            timing = measure_latency(
                runner, m.bench_inputs(), cfg, ctx, f"{m.name} / {c.recipe_name} / re-time", against=against
            )
        metrics: dict[str, Any] = {
            **timing.result.summary(),
            **timing.metrics(),
            "thread_settings": cfg.thread_settings(),
        }
        metrics.pop("peak_mem_bytes", None)
        if timing.baseline is not None:
            metrics.update(timing.paired())
            metrics["compared_with"] = {
                "id": base.id,
                "p50_ms": timing.baseline.p50,
                "recorded_p50_ms": base.get("p50_ms"),
                "how": f"re-timed, interleaved with the candidate: {len(timing.baseline.extra['round_p50_ms'])} rounds",
                "round_p50_ms": timing.baseline_rounds(),
            }
        metrics.update(usual_speed(store, base.id, metrics, baseline=c.id == base.id))
        before = {k: c.get(k) for k in _COMPARED}
        out.append(Retiming(store.add_retiming(c.id, metrics), before))
    return out


def noisy_ids(cands: Iterable[Candidate]) -> list[str]:
    """The measured candidates whose latency is marked noisy (what a Re-time button offers first)."""
    return [c.id for c in cands if c.ok and c.get("noisy") and c.notes.get("measured_on") != "device"]
