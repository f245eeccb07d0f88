"""Architecture search under a device budget: "the most accurate model that runs in under X ms here".

The space is derived from the user's model (:class:`ArchitectureSpace`): for transformer encoders the layers
kept, the attention heads kept and the FFN width; for CNNs the channel width and the convolutions removed; each
combined with a precision (the ONNX chain after export). A student starts from the teacher's weights (layer
selection, L1-ranked heads / FFN neurons / channels: :class:`~workbench.passes.Distill`) and is trained by
distillation.

Latency first, training last:

1. every architecture is built untrained (``Distill(steps=0)``), exported, quantized and timed beside the FP32
   baseline: seconds each, because latency does not depend on the weight values. Those over the latency or size
   limit are dropped, and so are the dominated ones (another architecture as fast, within
   :data:`SAME_SPEED`, with more weights);
2. the rest are trained, most promising first, each within ``train_seconds`` and the whole search within
   ``time_budget_s``: with a latency limit (best = the most accurate that fits) the students with the most weights
   first; without one (best = the fastest within the accuracy limit) a bisection along the latency-ordered front,
   since a slower student with more weights is the more accurate one;
3. every trained student is a recorded candidate (distill -> export -> precision, with its lineage) and a trial of
   an Optuna study beside the run store, so the report finds it and an interrupted search resumes: the untrained
   timings are kept beside the run store, the trained students are reused from it.

With a device table (``device_table=``: the ``latency_table.json`` a probe bundle wrote on the device, see
:func:`workbench.deploy.probe.export_probe`) the budget is judged on the device's numbers for the architectures
it timed; the others are predicted from the host timing times the device/host ratio of those it did.

>>> space = ArchitectureSpace(width=(1.0, 0.5), precision=("fp32",))
>>> space.name
'architecture'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.config import PassConfig
from ..core.context import RunContext
from ..core.errors import CancelledError, ConfigError, WorkbenchError
from ..measure.benchmark import BenchConfig, measure_latency
from ..models.registry import LoadedModel
from ..optimize import recipe_key, run_baseline, run_recipe
from ..passes import Distill, DynamicInt8, OnnxExport, OrtOptimize, StaticInt8
from ..passes.registry import PassJob, apply_pass
from ..passes.surgery import removable_blocks
from ..passes.training import encoder_layers, is_encoder, warm_teacher
from ..recipes.registry import INT8_FUSIONS, Recipe
from ..store.runstore import RunStore
from ..tasks import pareto_front
from ..tasks.budget import Budget, Violation, violations
from .result import (
    SearchResult,
    TrialRecord,
    open_study,
    optuna_constraints,
    pick_best,
    study_storage,
    trial_quality,
)

__all__ = [
    "ARCHITECTURE",
    "PRECISIONS",
    "SAME_SPEED",
    "Architecture",
    "ArchitectureSpace",
    "architecture_search",
    "read_device_table",
]

#: the family name (``workbench search MODEL --family architecture``)
ARCHITECTURE = "architecture"
#: what follows the student's export, per precision
PRECISIONS: dict[str, tuple[PassConfig, ...]] = {
    "fp32": (OnnxExport(), OrtOptimize()),
    "int8-dynamic": (OnnxExport(), INT8_FUSIONS, DynamicInt8(per_channel=True)),
    "int8-static": (OnnxExport(), StaticInt8()),
}
#: two architectures this close in latency count as equally fast: a short paired timing on a laptop moves by
#: about this much, and a student 10 % slower with more weights is the one worth training
SAME_SPEED = 0.10


@dataclass(frozen=True)
class Architecture:
    """One student: depth, width and precision. ``layers``/``heads`` apply to transformer encoders (None for
    CNNs), ``drop_blocks`` to CNNs; ``width`` is the FFN neurons (transformers) or channels (CNNs) kept."""

    layers: int | None
    heads: float | None
    width: float
    drop_blocks: int
    precision: str

    @property
    def label(self) -> str:
        shape = (
            f"L{self.layers} h{self.heads:g} ffn{self.width:g}"
            if self.layers is not None
            else f"width{self.width:g}" + (f" -{self.drop_blocks}conv" if self.drop_blocks else "")
        )
        return f"{shape} {self.precision}"

    @property
    def structure(self) -> tuple:
        """What the untrained student's weights depend on (not the precision)."""
        return (self.layers, self.heads, self.width, self.drop_blocks)

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def distill(self, steps: int, max_seconds: float) -> Distill:
        return Distill(
            student_layers=self.layers,
            heads=None if self.heads is None or self.heads >= 1.0 else self.heads,
            width=self.width,
            drop_blocks=self.drop_blocks,
            steps=steps,
            max_seconds=max_seconds,
        )

    def recipe(self, steps: int, max_seconds: float) -> Recipe:
        return Recipe(
            f"{ARCHITECTURE}({self.label.replace(' ', ',')})",
            (self.distill(steps, max_seconds), *PRECISIONS[self.precision]),
            f"a student of this shape distilled from the FP32 model, then {self.precision}",
            ("distill", "architecture"),
        )


def _fractions(owner: str, name: str, values: Sequence[float] | None) -> None:
    if values is None:
        return
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.05 <= v <= 1 for v in values):
        raise ConfigError.out_of_range(owner, name, values, "a non-empty tuple of fractions in [0.05, 1]")


@dataclass(frozen=True)
class ArchitectureSpace:
    """The architectures to search, derived from the model where a field is None.

    - ``layers``: transformer layers kept (None: 1, 2, a third, a half and two thirds of the model's);
    - ``heads``: fraction of attention heads kept per layer;
    - ``width``: fraction of FFN neurons (transformers) or channels (CNNs) kept (None: 1, 0.5, 0.25 for
      transformers; 1, 0.75, 0.5, 0.25 for CNNs);
    - ``drop_blocks``: CNN convolutions removed (None: 0 up to 2, as many as the model can lose);
    - ``precision``: keys of :data:`PRECISIONS` (None: int8-dynamic for transformers, fp32 and int8-static for
      CNNs);
    - ``train_steps`` / ``train_seconds``: each student's distillation, its steps and wall-clock cap;
    - ``time_budget_s``: the whole search (screening included); no student starts that would not finish in it.
    """

    layers: tuple[int, ...] | None = None
    heads: tuple[float, ...] = (1.0, 0.5)
    width: tuple[float, ...] | None = None
    drop_blocks: tuple[int, ...] | None = None
    precision: tuple[str, ...] | None = None
    train_steps: int = 480
    train_seconds: float = 300.0
    time_budget_s: float = 1200.0
    name: str = field(default=ARCHITECTURE, init=False)

    def __post_init__(self) -> None:
        owner = "ArchitectureSpace"
        if self.layers is not None and (
            not self.layers or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.layers)
        ):
            raise ConfigError.out_of_range(owner, "layers", self.layers, "a non-empty tuple of ints >= 1")
        _fractions(owner, "heads", self.heads)
        _fractions(owner, "width", self.width)
        if self.drop_blocks is not None and (
            not self.drop_blocks
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in self.drop_blocks)
        ):
            raise ConfigError.out_of_range(owner, "drop_blocks", self.drop_blocks, "a non-empty tuple of ints >= 0")
        if self.precision is not None and (not self.precision or any(p not in PRECISIONS for p in self.precision)):
            raise ConfigError.out_of_range(
                owner, "precision", self.precision, f"a non-empty tuple of {', '.join(map(repr, PRECISIONS))}"
            )
        Distill(steps=self.train_steps, max_seconds=self.train_seconds)  # the same ranges as the pass
        if isinstance(self.time_budget_s, bool) or not isinstance(self.time_budget_s, (int, float)):
            raise ConfigError.out_of_range(owner, "time_budget_s", self.time_budget_s, "seconds > 0")
        if not 0 < self.time_budget_s <= 7 * 86_400:
            raise ConfigError.out_of_range(owner, "time_budget_s", self.time_budget_s, "seconds in (0, 604800]")

    def points(self, model: LoadedModel) -> list[Architecture]:
        """Every architecture of this space for ``model`` (its depth and width read from the module)."""
        module = model.baseline.module if model.baseline.kind == "torch" else None
        if module is None:
            raise ConfigError(
                f"The architecture search builds students from a PyTorch model's weights; {model.name!r} is "
                f"{'an ONNX file' if model.baseline.kind == 'onnx' else 'a ' + model.baseline.kind + ' model'}. "
                "Load the PyTorch model (a Hugging Face folder, a bundled name or from_module) to search its "
                "architecture, or search precision and sparsity with the other families."
            )
        if is_encoder(module):
            n = len(encoder_layers(module))
            layers = self.layers or tuple(sorted({v for v in (1, 2, n // 3, n // 2, (2 * n) // 3) if 1 <= v < n}))
            if max(layers) > n:
                raise ConfigError.out_of_range(
                    "ArchitectureSpace", "layers", self.layers, f"ints in [1, {n}]: {model.name!r} has {n} layers"
                )
            width = self.width or (1.0, 0.5, 0.25)
            precision = self.precision or ("int8-dynamic",)
            if self.drop_blocks not in (None, (0,)):
                raise ConfigError(
                    f"ArchitectureSpace: 'drop_blocks' applies to CNNs; {model.name!r} is a transformer encoder, "
                    f"whose depth is 'layers'. Got {self.drop_blocks!r} instead."
                )
            return [
                Architecture(L, h, w, 0, p)
                for L in layers
                for h in self.heads
                for w in width
                for p in precision
                if (L, h, w) != (n, 1.0, 1.0)  # the teacher itself is the baseline
            ]
        if self.layers is not None:
            raise ConfigError(
                f"ArchitectureSpace: 'layers' applies to transformer encoders; {model.name!r} "
                f"({type(module).__name__}) has no layer stack: its depth is 'drop_blocks'. Got {self.layers!r}."
            )
        removable = len(removable_blocks(module, model.data.eval.take(slice(0, 2)).inputs))
        blocks = self.drop_blocks or tuple(range(min(2, removable) + 1))
        if max(blocks) > removable:
            raise ConfigError.out_of_range(
                "ArchitectureSpace",
                "drop_blocks",
                self.drop_blocks,
                f"ints in [0, {removable}]: {model.name!r} has {removable} convolution(s) it can lose",
            )
        width = self.width or (1.0, 0.75, 0.5, 0.25)
        precision = self.precision or ("fp32", "int8-static")
        return [
            Architecture(None, None, w, b, p)
            for b in blocks
            for w in width
            for p in precision
            if (w, b) != (1.0, 0) or p != "fp32"
        ]

    def fingerprint(self, model: LoadedModel) -> str:
        pts = [a.recipe(self.train_steps, self.train_seconds).to_dict()["steps"] for a in self.points(model)]
        return hashlib.sha256(json.dumps(pts, sort_keys=True, default=str).encode()).hexdigest()[:10]


# ---- the device's own numbers ---------------------------------------------------------------------------
def read_device_table(table: str | Path | dict) -> dict[str, Any]:
    """A device latency table (``latency_table.json`` from a probe bundle): ``{"device": ..., "rows":
    [{"architecture": label, "p50_ms": ...}]}``; refused with the reason when it is not one."""
    src = str(table)
    if not isinstance(table, dict):
        try:
            table = json.loads(Path(table).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"No device latency table at {src}: give the latency_table.json a probe bundle wrote."
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{src} is not a device latency table (not JSON: {e}).") from None
    rows = table.get("rows") if isinstance(table, dict) else None
    if not isinstance(rows, list) or not all(
        isinstance(r, dict)
        and isinstance(r.get("architecture"), str)
        and isinstance(r.get("p50_ms"), (int, float))
        and r["p50_ms"] > 0
        for r in rows
    ):
        raise ConfigError(
            f"{src} is not a device latency table: it needs 'rows', each with an 'architecture' label and a "
            "positive 'p50_ms' (what run_probe.py writes on the device)."
        )
    return {
        "device": str(table.get("device") or "device"),
        "model": table.get("model"),
        "fingerprint": table.get("fingerprint"),
        "p50_ms": {r["architecture"]: float(r["p50_ms"]) for r in rows},
    }


def _device_latency(rows: list[dict], device: dict | None) -> None:
    """Set ``judged_p50_ms`` on every screened row: the device's p50 where it timed the architecture, else the
    host p50 times the median device/host ratio (``predicted``), or the host p50 without a table."""
    # a student's own p50, not its ratio to the baseline: PyTorch eager with every core busy stalls in its
    # thread barriers far more than an ONNX Runtime student does, so the ratio carries the baseline's noise
    table = device["p50_ms"] if device is not None else {}
    ratios = sorted(table[r["label"]] / r["p50_ms"] for r in rows if r["label"] in table)
    ratio = ratios[len(ratios) // 2] if ratios else None
    for r in rows:
        if r["label"] in table:
            r["judged_p50_ms"], r["judged_by"] = table[r["label"]], device["device"]
        elif ratio is not None:
            r["judged_p50_ms"], r["judged_by"] = r["p50_ms"] * ratio, f"predicted for {device['device']}"
        else:
            r["judged_p50_ms"], r["judged_by"] = r["p50_ms"], "host"


# ---- screening: every architecture untrained ------------------------------------------------------------
def _capacity(module) -> int:
    """Weights that do the work (embeddings excluded: a lookup costs no MACs and holds no capacity to lose)."""
    n = sum(p.numel() for p in module.parameters())
    if is_encoder(module):
        n -= sum(p.numel() for p in module.encoder.embeddings.parameters())
    return int(n)


def _screen_bench(bench: BenchConfig) -> BenchConfig:
    """A short paired timing: enough to rank architectures and drop those far over the limit; the trained
    students are timed again in full."""
    return replace(bench, warmup=min(bench.warmup, 5), runs=min(bench.runs, 30), rounds=min(bench.rounds, 3), retries=0)


def untrained_students(
    model: LoadedModel, archs: Sequence[Architecture], ctx: RunContext, threads: int, workdir: Path
) -> Iterator[tuple[Architecture, Any, dict[str, int] | None, str | None]]:
    """Each architecture built untrained from the teacher's weights and taken through its precision chain:
    ``(arch, artifact, {"capacity", "params"}, None)``, or ``(arch, None, None, error)`` when it cannot be
    built. Students of one shape are built once for all their precisions. Files live under ``workdir``."""
    students: dict[tuple, tuple[Any, dict[str, int]]] = {}
    for i, arch in enumerate(archs):
        try:
            if arch.structure not in students:
                job = PassJob(model=model, ctx=ctx, workdir=workdir / f"s{i}", threads=threads, stage="untrained")
                st = apply_pass(model.baseline, arch.distill(0, 1.0), job)
                students[arch.structure] = (st, {"capacity": _capacity(st.module), "params": st.param_count()})
            art, facts = students[arch.structure]
            for j, step in enumerate(PRECISIONS[arch.precision]):
                job = PassJob(model=model, ctx=ctx, workdir=workdir / f"a{i}-{j}", threads=threads, stage="untrained")
                art = apply_pass(art, step, job)
        except CancelledError:
            raise
        except WorkbenchError as e:
            yield arch, None, None, f"{type(e).__name__}: {e}".splitlines()[0]
            continue
        yield arch, art, facts, None


def _screen(
    model: LoadedModel,
    archs: list[Architecture],
    bench: BenchConfig,
    ctx: RunContext,
    cached: dict[str, dict],
    on_row: Callable[[dict], None],
) -> list[dict]:
    threads = bench.effective_threads
    inputs = model.bench_inputs()
    against = model.baseline.runner(threads, session_config=bench.session_config())
    sb = _screen_bench(bench)
    todo = [a for a in archs if a.label not in cached]
    for a in archs:  # timed by an earlier (interrupted) run: heard again, not timed again
        if a.label in cached:
            on_row(cached[a.label])
    fresh: dict[str, dict] = {}
    root = Path(tempfile.mkdtemp(prefix="wb-nas-"))
    stage = f"{model.name} / architecture search / untrained students"
    try:
        ctx.begin(stage, total=len(archs))
        ctx.step(
            len(archs) - len(todo), message=f"{len(archs) - len(todo)} timed before" if len(todo) < len(archs) else ""
        )
        t0 = time.monotonic()
        for arch, art, facts, error in untrained_students(model, todo, ctx, threads, root):
            row: dict[str, Any] = {"label": arch.label, "architecture": arch.params()}
            if error is not None:
                row.update(error=error, screen_s=time.monotonic() - t0)
            else:
                runner = art.runner(threads, session_config=bench.session_config())
                timing = measure_latency(runner, inputs, sb, ctx, f"{arch.label} / latency", against=against)
                base = timing.baseline.p50 if timing.baseline is not None else None
                speedup = timing.speedup
                row.update(
                    p50_ms=timing.result.p50,
                    baseline_p50_ms=base,
                    speedup=speedup,
                    size_bytes=art.size_bytes(),
                    **facts,
                    noisy=bool(timing.check.noisy),
                    screen_s=time.monotonic() - t0,
                    timed_at=time.time(),
                )
                del runner
            shutil.rmtree(root, ignore_errors=True)  # this architecture's files are not needed any more
            fresh[arch.label] = row
            on_row(row)
            ctx.begin(stage, total=len(archs))
            ctx.step(len(archs) - len(todo) + len(fresh), message=arch.label)
            t0 = time.monotonic()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [cached.get(a.label) or fresh[a.label] for a in archs]


def _over(row: dict, budget: Budget) -> str | None:
    """Why an untrained architecture cannot meet the budget (latency or size), or None."""
    out = []
    p50, by = row["judged_p50_ms"], row["judged_by"]
    if budget.max_latency_ms is not None and p50 > budget.max_latency_ms:
        where = "" if by == "host" else f" ({by})"
        out.append(
            f"over the {budget.max_latency_ms:g} ms latency limit by {p50 - budget.max_latency_ms:.3g} ms "
            f"({p50:.3g} ms untrained{where})"
        )
    mb = row["size_bytes"] / 1e6
    if budget.max_size_mb is not None and mb > budget.max_size_mb:
        out.append(f"over the {budget.max_size_mb:g} MB size limit by {mb - budget.max_size_mb:.3g} MB ({mb:.3g} MB)")
    return "; ".join(out) or None


def _dominated(rows: list[dict]) -> dict[str, str]:
    """label -> why: another architecture as fast (within SAME_SPEED) with more weights, or as many weights and
    clearly faster."""
    out = {}
    for a in rows:
        for b in rows:
            if a is b:
                continue
            fast = b["judged_p50_ms"] <= a["judged_p50_ms"] * (1 + SAME_SPEED)
            if (fast and b["capacity"] > a["capacity"]) or (
                b["capacity"] >= a["capacity"] and b["judged_p50_ms"] < a["judged_p50_ms"] * (1 - SAME_SPEED)
            ):
                out[a["label"]] = (
                    f"dominated by {b['label']}: {b['judged_p50_ms']:.3g} ms vs {a['judged_p50_ms']:.3g} ms with "
                    f"{b['capacity'] / 1e6:.3g} M weights vs {a['capacity'] / 1e6:.3g} M"
                )
                break
    return out


def _order(front: list[dict], prefer: str) -> list[dict]:
    """Most promising first: the most weights when best = most accurate; else the front by latency (fastest
    first; the caller bisects it) or by size."""
    if prefer == "accuracy":
        return sorted(front, key=lambda r: (-r["capacity"], r["judged_p50_ms"]))
    if prefer == "size":
        return sorted(front, key=lambda r: (r["size_bytes"], -r["capacity"]))
    return sorted(front, key=lambda r: (r["judged_p50_ms"], -r["capacity"]))


# ---- the search ------------------------------------------------------------------------------------------
def _cache_path(store: RunStore, model: LoadedModel, bench: BenchConfig) -> Path | None:
    if store.path == ":memory:":
        return None
    return (
        store.path.parent / "architectures" / f"{model.name}-{model.fingerprint[:12]}-t{bench.effective_threads}.json"
    )


def _read_cache(path: Path | None) -> dict[str, dict]:
    if path is None or not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}  # a damaged cache only costs a re-timing
    return {r["label"]: r for r in rows if isinstance(r, dict) and "label" in r and "error" not in r}


def _write_cache(path: Path | None, rows: dict[str, dict]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(list(rows.values()), indent=1, default=str))
    tmp.replace(path)


def _training_estimate(done: list[tuple[dict, float]], row: dict, space: ArchitectureSpace) -> float:
    """Seconds a student will take (training, evaluation, timing): the slowest rate seen so far per weight, else
    the per-student cap plus a minute."""
    if not done:
        return space.train_seconds + 60.0
    rate = max(s / max(r["capacity"], 1) for r, s in done)
    return min(rate * row["capacity"], space.train_seconds + max(s for _, s in done))


def architecture_search(
    model: LoadedModel,
    budget: Budget,
    space: ArchitectureSpace,
    *,
    trials: int,
    store: RunStore,
    bench: BenchConfig,
    ctx: RunContext,
    prefer: str,
    on_trial: Callable[[Any], None] | None = None,
    on_screen: Callable[[dict], None] | None = None,
    study_name: str | None = None,
    resume: bool = True,
    device_table: str | Path | dict | None = None,
):
    """Run the architecture search (see the module docstring); ``search(..., space=ArchitectureSpace())`` calls it.
    Returns a :class:`~workbench.search.result.SearchResult` whose ``screened`` rows hold every architecture's
    untrained timing and fate, and whose ``decisions`` say why each student was trained or dropped."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    wall0, t_start = time.monotonic(), time.time()
    device = read_device_table(device_table) if device_table is not None else None
    if device is not None and device["fingerprint"] not in (None, model.fingerprint[:12]):
        raise ConfigError(
            f"The device latency table was measured for model {device['model']!r} (fingerprint "
            f"{device['fingerprint']}), not for this {model.name!r} (fingerprint {model.fingerprint[:12]}): other "
            "weights or data. Write a probe of this model (workbench probe) and time it on the device."
        )
    archs = space.points(model)
    by_label = {a.label: a for a in archs}

    baseline = run_baseline(model, store=store, bench=bench, ctx=ctx)
    storage = study_storage(store)
    name = study_name or (
        f"{model.name}-{model.fingerprint[:8]}-{ARCHITECTURE}-{space.fingerprint(model)}-"
        + hashlib.sha256(
            json.dumps(
                [budget.to_dict(), bench.effective_threads, prefer, space.time_budget_s, device and device["p50_ms"]],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()[:8]
    )
    study = open_study(name, storage, resume=resume)
    in_study = {t.user_attrs.get("candidate_id") for t in study.get_trials(deepcopy=False)}
    cache_path = _cache_path(store, model, bench)
    cached = _read_cache(cache_path) if resume else {}

    def remember(row: dict) -> None:
        if "error" not in row and cached.get(row["label"]) is not row:  # a row heard again is on disk already
            cached[row["label"]] = row
            _write_cache(cache_path, cached)
        if on_screen is not None:
            on_screen(row)

    t_screen = time.monotonic()
    rows = _screen(model, archs, bench, ctx, cached, remember)
    decisions: list[str] = []
    ok_rows = [r for r in rows if "error" not in r]
    _device_latency(ok_rows, device)
    screen_s = time.monotonic() - t_screen
    decisions.append(
        f"Timed {len(rows)} architectures untrained beside the FP32 baseline in {screen_s:.0f} s"
        + (f" (judged on {device['device']}'s latency table)" if device else "")
        + "."
    )
    for r in rows:
        if "error" in r:
            r["fate"] = f"could not be built: {r['error']}"
    fitting = []
    for r in ok_rows:
        why = _over(r, budget)
        if why:
            r["fate"] = f"dropped: {why}"
        else:
            fitting.append(r)
    dominated = _dominated(fitting)
    front = []
    for r in fitting:
        if r["label"] in dominated:
            r["fate"] = f"dropped: {dominated[r['label']]}"
        else:
            front.append(r)
    n_over = sum(1 for r in ok_rows if r.get("fate", "").startswith("dropped: over"))
    decisions.append(
        f"{n_over} cannot meet the budget ({budget.describe()}) even untrained, {len(dominated)} are dominated; "
        f"{len(front)} remain: {', '.join(r['label'] for r in _order(front, 'latency')) or '-'}."
    )

    records: list[TrialRecord] = []
    done_times: list[tuple[dict, float]] = []
    teacher = model.baseline.module
    if front and is_encoder(teacher):  # the teacher's outputs once for every student, outside their budgets
        n_layers = len(encoder_layers(teacher))
        job = PassJob(model=model, ctx=ctx, threads=bench.effective_threads, stage="teacher")
        if warm_teacher(job, list(range(1, n_layers + 1)), f"{model.name} / architecture search / teacher outputs"):
            decisions.append(
                f"Ran the teacher over the {len(model.data.train)} training examples once for every student "
                f"({time.monotonic() - t_screen - screen_s:.0f} s)."
            )
        shutil.rmtree(job.workdir, ignore_errors=True)
    order = _order(front, prefer)

    def train(row: dict, why: str) -> TrialRecord | None:
        arch = by_label[row["label"]]
        left = space.time_budget_s - (time.monotonic() - wall0)
        est = _training_estimate(done_times, row, space)
        recipe = arch.recipe(space.train_steps, space.train_seconds)
        prior = store.find(recipe_key(model, recipe, bench))
        if prior is None and est > left:
            row["fate"] = f"not trained: about {est:.0f} s needed, {max(left, 0):.0f} s left of the time budget"
            decisions.append(f"{row['label']}: {row['fate']}.")
            return None
        t0 = time.monotonic()
        cand = run_recipe(model, recipe, store=store, baseline=baseline, bench=bench, ctx=ctx)
        took = time.monotonic() - t0
        if cand.created_at >= t_start:
            done_times.append((row, took))
        viol = _verdict(cand, row, budget, device)
        rec = TrialRecord(
            len(records), ARCHITECTURE, arch.params(), recipe, cand, viol, cand.created_at < t_start, took
        )
        records.append(rec)
        row["fate"] = f"trained: {rec.verdict}"
        row["candidate_id"] = cand.id
        drop = cand.get("accuracy_drop")
        decisions.append(
            f"{row['label']} trained ({why}) in {took:.0f} s"
            + (f": drop {100 * drop:+.2f} points" if drop is not None else "")
            + f", p50 {cand.get('p50_ms') or float('nan'):.3g} ms -> {rec.verdict}."
        )
        params = {"family": ARCHITECTURE, "label": row["label"]}
        dist = {"family": CategoricalDistribution([ARCHITECTURE]), "label": CategoricalDistribution(list(by_label))}
        attrs = {
            "key": cand.key,
            "candidate_id": cand.id,
            "verdict": rec.verdict,
            "violations": rec.to_dict()["violations"],
            "constraints": optuna_constraints(cand, budget),
        }
        if cand.id in in_study:  # a resumed search: the student is a trial already
            pass
        elif cand.ok and cand.get("p50_ms") is not None:
            values = [trial_quality(cand), cand.get("p50_ms"), (cand.get("size_bytes") or 0) / 1e6]
            study.add_trial(create_trial(params=params, distributions=dist, values=values, user_attrs=attrs))
        else:
            study.add_trial(create_trial(params=params, distributions=dist, state=TrialState.FAIL, user_attrs=attrs))
        ctx.begin(f"{model.name} / architecture search", total=max(1, min(trials, len(front))))
        ctx.step(len(records), message=f"{recipe.name}: {rec.verdict}")
        if on_trial is not None:
            on_trial(rec)
        return rec

    if prefer == "accuracy":
        for row in order:
            if len(records) >= trials:
                row["fate"] = f"not trained: {trials} students trained (trials)"
                continue
            if train(row, "the most weights among those not yet trained") is None:
                break
    else:
        lo, hi = 0, len(order) - 1
        while lo <= hi and len(records) < trials:
            mid = (lo + hi) // 2
            row = order[mid]
            rec = train(row, f"middle of the {hi - lo + 1} not yet ruled out")
            if rec is None:
                break
            if rec.fits:
                for r in order[mid + 1 : hi + 1]:
                    r.setdefault("fate", f"not trained: {row['label']} fits and is faster")
                hi = mid - 1
            else:
                for r in order[lo:mid]:
                    r.setdefault("fate", f"not trained: {row['label']} missed the budget, these have fewer weights")
                lo = mid + 1
    for r in front:
        r.setdefault("fate", "not trained: the trials or the time budget ran out")

    cands = [baseline, *(r.candidate for r in records if r.candidate is not None)]
    if device is None:
        best = pick_best(cands, budget, prefer)
    else:  # judged on the device's latencies: the host p50 of a candidate is not what the budget is about
        judged = {row["candidate_id"]: row["judged_p50_ms"] for row in rows if "candidate_id" in row}
        fits = [r.candidate for r in records if r.fits]
        rank = {
            "accuracy": lambda c: (-round(trial_quality(c), 6), judged[c.id]),
            "size": lambda c: (c.get("size_bytes") or 0, -trial_quality(c)),
        }.get(prefer, lambda c: (judged[c.id], -trial_quality(c)))
        best = min(fits, key=rank) if fits else None
    if best is not None:
        decisions.append(f"Best: {best.recipe_name} [{best.id}].")
    study.set_user_attr("screened", [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    study.set_user_attr("decisions", decisions)
    res = SearchResult(
        model.name,
        budget,
        baseline,
        records,
        best,
        pareto_front([c for c in {c.id: c for c in cands}.values() if c.status != "intermediate"]),
        prefer,
        name,
        storage,
        len(archs),
        time.monotonic() - wall0,
        "local",
    )
    res.screened = rows
    res.decisions = decisions
    res.device = device["device"] if device else None
    return res


def _verdict(cand, row: dict, budget: Budget, device: dict | None) -> list[Violation]:
    """The budget verdict of a trained student; with a device table its latency is the device's (or the
    prediction for it), not this host's."""
    if device is None:
        return violations(cand, budget)
    out = violations(cand, replace(budget, max_latency_ms=None))
    if cand.ok and budget.max_latency_ms is not None and row["judged_p50_ms"] > budget.max_latency_ms:
        out.insert(0, Violation("latency", budget.max_latency_ms, row["judged_p50_ms"]))
    return out
