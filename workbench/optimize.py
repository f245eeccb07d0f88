"""The pipeline: baseline + recipes -> measured, recorded candidates.

A candidate is a pure function of (model fingerprint, recipe steps, eval data, threads, bench
settings): its ``key`` hashes exactly those, so a candidate already in the store is reused instead
of rerun, and a candidate can be built in another process or on another node from the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .core.artifact import Artifact, file_sha256, onnx_artifact, runtime_for
from .core.context import RunContext
from .core.env import fingerprint, u8s8_saturates
from .core.errors import CancelledError, ConfigError, WorkbenchError
from .measure.benchmark import BenchConfig, measure_latency, measure_peak_rss, onnx_inference_memory, usual_p50
from .measure.evaluate import NonFiniteOutputError, predict
from .models.registry import LoadedModel
from .passes import PassJob, apply_pass
from .recipes.advice import default_recipes_here
from .recipes.registry import DEFAULT_RECIPES, Recipe, get_recipe
from .store.candidate import Candidate
from .store.runstore import RunStore, baseline_timing

__all__ = [
    "optimize",
    "run_baseline",
    "run_recipe",
    "measure",
    "candidate_key",
    "recipe_key",
    "find_candidate",
    "default_recipes_for",
    "usual_speed",
    "BASELINE",
]

#: the recipe name of the unmodified FP32 model
BASELINE = "baseline"
_KEY_VERSION = 2


def candidate_key(model: LoadedModel, steps: Iterable[dict], threads: int | None, bench: BenchConfig) -> str:
    payload = {
        "v": _KEY_VERSION,
        "model": model.fingerprint,
        "steps": list(steps),
        "threads": threads,
        "bench": [bench.warmup, bench.runs],
        # reduce_range="auto" makes other INT8 weights on a CPU whose u8s8 kernels saturate
        "u8s8_saturates": u8s8_saturates(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def recipe_key(model: LoadedModel, recipe: Recipe | str | None, bench: BenchConfig) -> str:
    """The key of the candidate ``recipe`` makes of ``model`` under these bench settings: the baseline's for
    ``None`` or for a recipe with nothing to do on this model (``ort-fp32`` on an ``.onnx`` file)."""
    adapted = None if recipe is None else get_recipe(recipe).adapted_to(model.baseline.kind)
    steps = [] if adapted is None else [s.to_dict() for s in adapted.steps]
    return candidate_key(model, steps, bench.threads, bench)


def find_candidate(
    store: RunStore, model: LoadedModel, recipe: Recipe | str | None = None, bench: BenchConfig = BenchConfig()
) -> Candidate | None:
    """The stored candidate (ok or degraded) of ``model`` + ``recipe`` + bench settings + data, or None: the one
    lookup optimize, search, the Ray executor and the dashboard share."""
    return store.find(recipe_key(model, recipe, bench))


def measure(
    model: LoadedModel,
    art: Artifact,
    *,
    bench: BenchConfig,
    ctx: RunContext,
    stage: str,
    base: dict[str, Any] | None = None,
    base_id: str | None = None,
    eval_batch: int = 32,
) -> dict[str, Any]:
    """Task metrics on the eval split, latency at batch 1, size, params; ratios against ``base`` (the baseline's
    metrics; its latency is re-timed beside this candidate's, ``base_id`` names it in ``compared_with``)."""
    custom = getattr(model.task, "measure", None)
    if custom is not None:  # tasks with their own protocol (causal LMs: perplexity, tokens/s)
        m = custom(model, art, bench=bench, ctx=ctx, stage=stage, base=base)
        if base is not None and m.get("compared_with"):  # the baseline re-timed in the same rounds
            m["compared_with"]["id"] = base_id
            base = {**base, "p50_ms": m["compared_with"]["p50_ms"]}
        return model.task.relative(m, base)
    threads = bench.effective_threads
    t0 = time.monotonic()
    runner = art.runner(threads, session_config=bench.session_config())
    outputs = predict(runner, model.data.eval, batch_size=eval_batch, ctx=ctx, stage=f"{stage} / evaluate")
    reference = model.reference_outputs(threads)
    m: dict[str, Any] = model.task.metrics(outputs, model.data.eval.labels, reference)
    m["eval_time_s"] = time.monotonic() - t0
    # the speed-up is taken against the baseline re-timed in the same rounds, not against its old record
    against = None
    if base and base.get("p50_ms") and art is not model.baseline:
        against = model.baseline.runner(threads, session_config=bench.session_config())
    timing = measure_latency(runner, model.bench_inputs(), bench, ctx, f"{stage} / latency", against=against)
    m.update(timing.result.summary())
    m.update(timing.metrics())
    m["thread_settings"] = bench.thread_settings()
    if timing.baseline is not None and base is not None:
        m["compared_with"] = {
            "id": base_id,
            "p50_ms": timing.baseline.p50,
            "recorded_p50_ms": base.get("p50_ms"),
            "how": f"interleaved with the candidate: {len(timing.baseline.extra['round_p50_ms'])} rounds",
            "round_p50_ms": timing.baseline_rounds(),
        }
        m["speedup_rounds"] = timing.round_speedups
        base = {**base, "p50_ms": timing.baseline.p50}
    m["peak_mem_bytes"] = inference_memory(art, model.bench_inputs(), threads)
    m["size_bytes"] = art.size_bytes()
    m["params"] = art.param_count()
    return model.task.relative(m, base)


def usual_speed(store: RunStore, base_id: str, metrics: Mapping[str, Any], *, baseline: bool = False) -> dict:
    """This timing's p50 at the machine's usual speed (:func:`~workbench.measure.benchmark.usual_p50`:
    ``p50_usual_ms``, ``usual_speed``), from the baseline ``base_id``'s timings already in ``store`` and this one
    (``metrics``, not recorded yet); ``baseline``: ``metrics`` are the baseline's own. Empty for a candidate not
    timed beside its baseline."""
    if baseline:
        speedup = 1.0
    elif (metrics.get("compared_with") or {}).get("p50_ms"):
        speedup = metrics.get("speedup")
    else:
        return {}
    now = {"measured_at": time.time(), **baseline_timing(metrics, own=baseline)}
    return usual_p50([*store.baseline_timings(base_id), now], speedup)


def inference_memory(art: Artifact, inputs: dict, threads: int) -> int:
    """Resident bytes a batch-1 inference needs: the runtime's copy of the weights plus peak workspace.

    ONNX Runtime, ExecuTorch, LiteRT: the peak RSS of a fresh process loading the model and running it once,
    beyond the runtime's import. PyTorch: the module's parameter and buffer bytes (resident already) plus the
    RSS added at the peak of one run.
    """
    if art.kind in ("executorch", "litert"):
        from .measure.edge_memory import edge_inference_memory

        return edge_inference_memory(art, inputs, threads)
    if art.kind == "torch":
        held = sum(t.numel() * t.element_size() for t in art.module.state_dict().values())
        runner = art.runner(threads)
        return held + measure_peak_rss(lambda: runner(inputs))
    return onnx_inference_memory(art.path, inputs, threads)


def _notes(art: Artifact) -> dict[str, Any]:
    return {k: v for k, v in art.meta.items() if _jsonable(v)}


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


def run_baseline(
    model: LoadedModel,
    *,
    store: RunStore,
    bench: BenchConfig = BenchConfig(),
    ctx: RunContext | None = None,
    reuse: bool = True,
) -> Candidate:
    """Measure (or reuse) the unmodified FP32 model."""
    ctx = ctx or RunContext()
    key = recipe_key(model, None, bench)
    store.remember_dataset(model.info.get("dataset") or {})  # the data box offers it again
    if reuse and (hit := store.find(key)):
        return hit
    art = model.baseline
    cand = Candidate(
        id=Candidate.new_id(),
        key=key,
        model=model.name,
        task=model.task.name,
        recipe_name=BASELINE,
        recipe={"name": BASELINE, "steps": []},
        runtime=art.runtime,
        status="ok",
        env=fingerprint(bench.effective_threads),
        threads=bench.effective_threads,
        artifact_path=str(art.path) if art.path else None,
        artifact_sha256=art.sha256(),
        notes={**_notes(art), **_data_note(model), **_load_note(model)},
    )
    try:
        metrics = measure(model, art, bench=bench, ctx=ctx, stage=f"{model.name} / baseline")
        metrics.update(usual_speed(store, cand.id, metrics, baseline=True))
    except CancelledError as e:
        store.add(replace(cand, status="cancelled", error=str(e)))
        raise
    except WorkbenchError as e:
        return store.add(replace(cand, status="failed", error=f"{type(e).__name__}: {e}"))
    return store.add(replace(cand, metrics=metrics))


def scored_on(
    every: Sequence[Candidate], model: LoadedModel | None, data: Mapping[str, Any] | None = None
) -> list[Candidate]:
    """The candidates of ``every`` (one model name's) scored on the chosen data.

    Their baseline (the root of their lineage) records the data set (``notes["data"]``): its sha256 must be the
    loaded ``model``'s. Before a model is loaded, ``data`` (the ``load_model`` keywords typed) picks by the data
    path; the bundled data (no ``data``) keeps every candidate recorded without a data set.
    """
    by_id = {c.id: c for c in every}

    def used(c: Candidate) -> dict[str, Any]:
        seen: set[str] = set()
        while c.parent_id in by_id and c.id not in seen:
            seen.add(c.id)
            c = by_id[c.parent_id]
        return c.notes.get("data") or {}

    if model is not None:
        sha = (model.info.get("dataset") or {}).get("sha256")
        bundled = not model.load_spec.get("data")
        return [c for c in every if (used(c).get("sha256") == sha if used(c) else bundled)]
    if data is None:
        return []
    if not data.get("data"):
        return [c for c in every if not used(c)]
    path = str(data["data"])
    return [c for c in every if used(c).get("source") in (path, str(Path(path).expanduser()))]


def artifact_intact(c: Candidate) -> bool:
    """The candidate's recorded artifact is there and has its recorded sha256 (a truncated or altered file is not
    reused: the candidate is made again). A candidate recorded without an artifact file is intact."""
    if not c.artifact_path:
        return True
    path = Path(c.artifact_path)
    if not path.exists():
        return False
    if not c.artifact_sha256:
        return True  # recorded before artifacts were hashed: nothing to check against
    try:
        got = onnx_artifact(path).sha256() if path.suffix == ".onnx" else file_sha256(path)
    except (WorkbenchError, OSError):  # unreadable or no longer an ONNX model
        return False
    return got == c.artifact_sha256


def _read_only(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.chmod(0o444)


def _data_note(model: LoadedModel) -> dict[str, Any]:
    """The baseline records which data set it was scored on (the report and ``workbench runs --json`` show it)."""
    d = model.info.get("dataset")
    if not d:
        return {}
    return {"data": {k: d.get(k) for k in ("source", "format", "kind", "rows", "sha256") if d.get(k) is not None}}


def _load_note(model: LoadedModel) -> dict[str, Any]:
    """The baseline records how its model was loaded (``load_model``'s arguments), so ``workbench remeasure`` and
    a report can load the same model on the same data again."""
    spec = {k: v for k, v in (model.load_spec or {}).items() if _jsonable(v)}
    return {"load": spec} if spec else {}


def _save_torch(art: Artifact, folder: Path) -> Artifact:
    from safetensors.torch import save_model

    path = folder / "model.safetensors"
    save_model(art.module, str(path))
    return replace(art, path=path)


def run_recipe(
    model: LoadedModel,
    recipe: Recipe | str,
    *,
    store: RunStore,
    baseline: Candidate | None = None,
    bench: BenchConfig = BenchConfig(),
    ctx: RunContext | None = None,
    reuse: bool = True,
    memo: dict[str, tuple[Artifact, str]] | None = None,
) -> Candidate:
    """Apply a recipe step by step. Every step is recorded (intermediate steps with status
    "intermediate"); the final one is measured. Failures are recorded, never raised, except cancel."""
    ctx = ctx or RunContext()
    baseline = baseline or run_baseline(model, store=store, bench=bench, ctx=ctx, reuse=reuse)
    adapted = get_recipe(recipe).adapted_to(model.baseline.kind)
    if adapted is None:  # e.g. ort-fp32 on a model that already is an ONNX file
        return baseline
    recipe = adapted
    recipe.validate_for(model.baseline.kind)
    memo = {} if memo is None else memo
    env = fingerprint(bench.effective_threads)
    final_key = candidate_key(model, [s.to_dict() for s in recipe.steps], bench.threads, bench)
    if reuse and (hit := store.find(final_key)) and artifact_intact(hit):
        return hit

    art, parent_id = model.baseline, baseline.id
    n = len(recipe.steps)
    for i, step in enumerate(recipe.steps, 1):
        steps_json = [s.to_dict() for s in recipe.steps[:i]]
        key = candidate_key(model, steps_json, bench.threads, bench)
        last = i == n
        stage = f"{model.name} / {recipe.name} / {step.kind}" + (f" ({i}/{n})" if n > 1 else "")
        base = Candidate(
            id=Candidate.new_id(),
            key=key,
            model=model.name,
            task=model.task.name,
            recipe_name=recipe.prefix(i).name,
            recipe={"name": recipe.name, "description": recipe.description, "steps": steps_json},
            runtime=runtime_for(step.produces),
            status="ok" if last else "intermediate",
            env=env,
            parent_id=parent_id,
            threads=bench.effective_threads,
            seed=0,
        )
        if not last and key in memo:  # shared prefix (export, fusions) already built in this run
            art, parent_id = memo[key]
            continue
        if (
            not last
            and reuse
            and (prev := store.find(key, ("intermediate", "ok", "degraded")))
            and prev.runtime == "onnxruntime"
            and artifact_intact(prev)
        ):
            art, parent_id = onnx_artifact(Path(prev.artifact_path), **prev.notes), prev.id
            memo[key] = (art, parent_id)
            continue
        final_dir = store.artifacts_dir / base.id
        tmp_dir = store.artifacts_dir / f".tmp-{base.id}-{os.getpid()}"
        job = PassJob(model=model, ctx=ctx, workdir=tmp_dir, threads=bench.effective_threads, stage=stage)
        t0 = time.monotonic()
        try:
            out = apply_pass(art, step, job)
            # a pass may write its own weights file (quantized torch modules are not plain safetensors)
            if out.kind == "torch" and not (out.path is not None and tmp_dir in out.path.parents):
                tmp_dir.mkdir(parents=True, exist_ok=True)
                out = _save_torch(out, tmp_dir)
            build_s = time.monotonic() - t0
            _read_only(tmp_dir)  # recorded artifacts are inputs from now on, never written again
            tmp_dir.replace(final_dir)  # atomic: the artifact appears complete or not at all
            if out.path is not None and tmp_dir in out.path.parents:
                out = replace(out, path=final_dir / out.path.relative_to(tmp_dir))
            cand = replace(
                base, artifact_path=str(out.path) if out.path else None, artifact_sha256=out.sha256(), notes=_notes(out)
            )
            if not last:
                store.add(replace(cand, metrics={"size_bytes": out.size_bytes(), "build_time_s": build_s}))
                memo[key] = (out, cand.id)
                art, parent_id = out, cand.id
                continue
            metrics = measure(model, out, bench=bench, ctx=ctx, stage=stage, base=baseline.metrics, base_id=baseline.id)
            metrics["build_time_s"] = build_s
            metrics.update(usual_speed(store, baseline.id, metrics))
            reason = model.task.degradation(metrics, baseline.metrics)
            if reason:
                cand = replace(cand, status="degraded", error=f"degraded: {reason}")
            return store.add(replace(cand, metrics=metrics))
        except CancelledError as e:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            store.add(replace(base, status="cancelled", error=str(e)))
            raise
        except NonFiniteOutputError as e:
            return store.add(
                replace(
                    base,
                    status="failed",
                    error=f"step {i} ({step.kind}): {e}",
                    artifact_path=str(final_dir) if final_dir.exists() else None,
                )
            )
        except Exception as e:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            msg = f"step {i} ({step.kind}): {type(e).__name__}: {e}"
            if not isinstance(e, WorkbenchError):
                msg += "\n" + "".join(traceback.format_exception_only(type(e), e)).strip()
            return store.add(replace(base, status="failed", error=msg))
    raise AssertionError("unreachable: a recipe has at least one step")


def default_recipes_for(model: LoadedModel) -> tuple[list[str], dict[str, str]]:
    """The recipes ``optimize`` runs when none are named: the task's defaults (else DEFAULT_RECIPES) minus those
    known to be slower than FP32 on this CPU (BF16 without avx512_bf16/AMX, ...). Returns ``(kept, skipped)``,
    ``skipped`` mapping each left-out recipe to the reason; name a recipe to run it anyway."""
    defaults = getattr(model.task, "default_recipes", None) or DEFAULT_RECIPES  # e.g. the causal-LM task's lm-* recipes
    return default_recipes_here(defaults)


def optimize(
    model: LoadedModel | str,
    recipes: Iterable[Recipe | str] | None = None,
    *,
    store: RunStore | str | None = None,
    threads: int | None = None,
    bench: BenchConfig | None = None,
    ctx: RunContext | None = None,
    reuse: bool = True,
    on_candidate: Callable[[Candidate], None] | None = None,
    **load_kw: Any,
) -> list[Candidate]:
    """Measure the baseline, then each recipe; return [baseline, *candidates] (all recorded). Without ``recipes``:
    :func:`default_recipes_for` (the defaults this CPU does not make slower than FP32).

    >>> cands = optimize("digits-cnn", ["ort-int8-dynamic"], store=":memory:")  # doctest: +SKIP
    >>> [c.recipe_name for c in cands]
    ['baseline', 'ort-int8-dynamic']
    """
    from .models.registry import load_model

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, **load_kw)
    elif load_kw:
        raise ConfigError(
            f"optimize got load_model options {sorted(load_kw)} with a model that is already loaded: pass them to "
            "load_model, or pass the model's name."
        )
    if isinstance(recipes, (str, Recipe)):  # one recipe named where a list is expected: take it as that list
        recipes = [recipes]
    store = store if isinstance(store, RunStore) else RunStore(store)
    bench = bench or BenchConfig(threads=threads)
    if threads is not None and bench.threads != threads:
        bench = replace(bench, threads=threads)
    ctx = ctx or RunContext()
    resolved = [get_recipe(r) for r in (default_recipes_for(model)[0] if recipes is None else recipes)]
    for r in resolved:  # validate everything before spending minutes on the first one
        if (a := r.adapted_to(model.baseline.kind)) is not None:
            a.validate_for(model.baseline.kind)
    base = run_baseline(model, store=store, bench=bench, ctx=ctx, reuse=reuse)
    out = [base]
    if on_candidate:
        on_candidate(base)
    memo: dict[str, tuple[Artifact, str]] = {}
    for r in resolved:
        c = run_recipe(model, r, store=store, baseline=base, bench=bench, ctx=ctx, reuse=reuse, memo=memo)
        out.append(c)
        if on_candidate:
            on_candidate(c)
    return out
