"""Per-layer sensitivity: apply one technique to one layer (or block) at a time and measure the damage.

The techniques are real passes on the ONNX graph, run through :class:`SelectiveQuant` (a registered
pass, so the mixed-precision recipe it leads to is an ordinary recipe that the run store records):

- ``int8``: ONNX Runtime dynamic INT8, per-channel weights, on the chosen MatMul/Conv/Gemm nodes only;
- ``int4``: 4-bit block weights (MatMulNBits) on the chosen MatMul/Gemm nodes only;
- ``prune``: the smallest-magnitude ``sparsity`` share of the chosen layers' weights set to zero.

>>> res = sensitivity(load_model("digits-cnn", n_eval=200), ["int8", "prune"])   # doctest: +SKIP
>>> res.frame[["technique", "layer", "accuracy_drop"]]                          # doctest: +SKIP
>>> mixed = mixed_precision(model, max_drop=0.005, store=RunStore())             # doctest: +SKIP
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.artifact import Artifact
from ..core.config import check_choice, check_range
from ..core.context import RunContext
from ..core.errors import ConfigError, PassError, WorkbenchError
from ..models.registry import LoadedModel
from ..passes import OnnxExport, PassJob, apply_pass
from ..passes.selective import TECHNIQUE_OPS, TECHNIQUES, SelectiveQuant, weight_layers
from ..recipes.registry import Recipe
from ..store.candidate import Candidate
from ..store.runstore import RunStore
from .benchmark import BenchConfig
from .evaluate import predict

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

__all__ = [
    "SelectiveQuant",
    "TECHNIQUES",
    "weight_layers",
    "SensitivityResult",
    "sensitivity",
    "sensitivity_chart",
    "MixedPrecisionResult",
    "mixed_precision",
]


# ---- the analysis --------------------------------------------------------------------------------
_BLOCK = re.compile(r"^(layers?|blocks?|h|stages?)[._]\d+$")


def _block_of(name: str) -> str:
    parts = [p for p in name.strip("/").split("/") if p]
    for i, p in enumerate(parts):
        last = p.split(".")[-2:] if "." in p else [p]
        if _BLOCK.match(p) or (len(last) == 2 and _BLOCK.match(".".join(last))):
            return "/".join(parts[: i + 1])
    return parts[0] if len(parts) > 1 else name


def _onnx_baseline(model: LoadedModel, ctx: RunContext, threads: int | None, workdir: Path) -> Artifact:
    if model.baseline.kind == "onnx":
        return model.baseline
    return apply_pass(
        model.baseline,
        OnnxExport(),
        PassJob(model=model, ctx=ctx, workdir=workdir, threads=threads, stage=f"{model.name} / onnx-export"),
    )


def _score(model: LoadedModel, art: Artifact, threads: int | None, ctx: RunContext, stage: str) -> dict[str, Any]:
    out = predict(art.runner(threads), model.data.eval, ctx=ctx, stage=stage)
    return model.task.metrics(out, model.data.eval.labels, model.reference_outputs(threads))


@dataclass
class SensitivityResult:
    """One row per (technique, layer or block): accuracy, drop vs FP32, fidelity. ``frame`` is a DataFrame."""

    model: str
    by: str
    baseline: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records(self.rows)

    def ranking(self, technique: str) -> list[dict[str, Any]]:
        """Layers of ``technique``, most sensitive first (largest accuracy drop, then lowest fidelity)."""
        rows = [r for r in self.rows if r["technique"] == technique and r["layer"] != "(all)"]
        if not rows:
            raise WorkbenchError(
                f"No sensitivity rows for technique {technique!r}. Measured: "
                f"{', '.join(sorted({r['technique'] for r in self.rows}))}."
            )
        return sorted(rows, key=lambda r: (-(r.get("accuracy_drop") or 0.0), r.get("fidelity") or 0.0))

    def chart(self, metric: str = "accuracy_drop") -> alt.LayerChart:
        return sensitivity_chart(self, metric)


def sensitivity(
    model: LoadedModel | str,
    techniques: Sequence[str] | str = ("int8",),
    *,
    by: str = "layer",
    threads: int | None = None,
    sparsity: float = 0.5,
    ctx: RunContext | None = None,
    **load_kw: Any,
) -> SensitivityResult:
    """Apply each technique to one layer (``by="layer"``) or block (``by="block"``) at a time; also to all
    layers at once (row ``(all)``) for scale. Scored on the model's eval split against FP32."""
    from ..models.registry import load_model

    techniques = [techniques] if isinstance(techniques, str) else list(techniques)
    if not techniques:
        raise ConfigError.out_of_range("sensitivity", "techniques", techniques, f"a non-empty list from {TECHNIQUES}")
    for t in techniques:
        check_choice("sensitivity", "techniques", t, TECHNIQUES)
    check_choice("sensitivity", "by", by, ("layer", "block"))
    if isinstance(model, str):
        model = load_model(model, **load_kw)
    ctx = ctx or RunContext()
    import onnx

    with tempfile.TemporaryDirectory(prefix="wb-sens-") as d:
        base = _onnx_baseline(model, ctx, threads, Path(d) / "export")
        graph = onnx.load(str(base.path), load_external_data=False)
        base_m = _score(model, base, threads, ctx, f"{model.name} / sensitivity / fp32")
        res = SensitivityResult(model.name, by, base_m)
        for tech in techniques:
            layers = weight_layers(graph, tech)
            if not layers:
                raise PassError(
                    f"sensitivity: {model.name} has no layer that {tech!r} applies to "
                    f"(it needs {', '.join(TECHNIQUE_OPS[tech])} nodes with constant weights)."
                )
            groups: dict[str, list[dict]] = {}
            for lay in layers:
                groups.setdefault(lay["layer"] if by == "layer" else _block_of(lay["layer"]), []).append(lay)
            for i, (gname, members) in enumerate([*groups.items(), ("(all)", layers)]):
                cfg = SelectiveQuant(tech, only=tuple(m["layer"] for m in members), sparsity=sparsity)
                job = PassJob(
                    model=model,
                    ctx=ctx,
                    workdir=Path(d) / f"{tech}-{i}",
                    threads=threads,
                    stage=f"{model.name} / sensitivity / {tech} / {gname}",
                )
                m = _score(model, apply_pass(base, cfg, job), threads, ctx, job.stage)
                row = {
                    "technique": tech,
                    "layer": gname,
                    "order": i,
                    "op_types": ",".join(sorted({x["op_type"] for x in members})),
                    "nodes": [x["layer"] for x in members],
                    "params": sum(x["params"] for x in members),
                    "accuracy": m.get("accuracy"),
                    "fidelity": m.get("fidelity"),
                    "cosine": m.get("cosine"),
                }
                if m.get("accuracy") is not None and base_m.get("accuracy") is not None:
                    row["accuracy_drop"] = base_m["accuracy"] - m["accuracy"]
                else:  # no labels: the fidelity loss stands in for the drop
                    row["accuracy_drop"] = (base_m.get("fidelity") or 1.0) - (m.get("fidelity") or 0.0)
                res.rows.append(row)
    return res


def sensitivity_chart(res: SensitivityResult, metric: str = "accuracy_drop") -> alt.LayerChart:
    """Heat map: layers (rows, graph order) x techniques (columns), coloured by ``metric``."""
    import altair as alt

    valid = ("accuracy_drop", "fidelity", "accuracy", "cosine")
    check_choice("sensitivity_chart", "metric", metric, valid)
    data = [
        {
            k: r.get(k)
            for k in ("technique", "layer", "order", "op_types", "params", "accuracy", "accuracy_drop", "fidelity")
        }
        | {"value": r.get(metric)}
        for r in res.rows
    ]
    for d in data:
        if d["accuracy_drop"] is not None:
            d["drop_pts"] = round(100 * d["accuracy_drop"], 2)
    order = []
    for r in sorted(res.rows, key=lambda r: r["order"]):
        if r["layer"] not in order:
            order.append(r["layer"])
    title = {
        "accuracy_drop": "accuracy drop",
        "fidelity": "fidelity to FP32",
        "accuracy": "accuracy",
        "cosine": "cosine to FP32",
    }[metric]
    scheme = "reds" if metric == "accuracy_drop" else "blues"
    base = alt.Chart(alt.Data(values=data)).encode(
        x=alt.X("technique:N", title="technique"), y=alt.Y("layer:N", sort=order, title=res.by)
    )
    rect = base.mark_rect().encode(
        color=alt.Color("value:Q", title=title, scale=alt.Scale(scheme=scheme)),
        tooltip=["layer:N", "technique:N", "op_types:N", "params:Q", "accuracy:Q", "drop_pts:Q", "fidelity:Q"],
    )
    text = base.mark_text(fontSize=10).encode(text=alt.Text("value:Q", format=".3f"))
    return (rect + text).properties(
        title=f"{res.model}: sensitivity per {res.by} ({title})",
        width=80 * len({r["technique"] for r in res.rows}),
        height=max(120, 18 * len(order)),
    )


# ---- mixed precision -------------------------------------------------------------------------------
@dataclass
class MixedPrecisionResult:
    recipe: Recipe
    candidate: Candidate
    kept: list[str]
    #: (layers kept in float, accuracy drop) for each step tried, in order
    history: list[tuple[int, float]]

    @property
    def fits(self) -> bool:
        return self.candidate.ok and (self.candidate.get("accuracy_drop") or 0.0) <= self.max_drop

    max_drop: float = 0.0


def mixed_precision(
    model: LoadedModel | str,
    max_drop: float,
    *,
    technique: str = "int8",
    sens: SensitivityResult | None = None,
    store: RunStore | str | None = None,
    bench: BenchConfig | None = None,
    threads: int | None = None,
    ctx: RunContext | None = None,
    sparsity: float = 0.5,
    **load_kw: Any,
) -> MixedPrecisionResult:
    """Keep the most sensitive layers in float, one more at a time, until the accuracy drop is within
    ``max_drop`` (a fraction: 0.005 = half a point). The chosen recipe is run and recorded in ``store``.
    ``technique="prune"`` works the same way: the most sensitive layers stay dense."""
    from ..models.registry import load_model
    from ..optimize import run_recipe

    check_range("mixed_precision", "max_drop", max_drop, 0, 1)
    check_choice("mixed_precision", "technique", technique, TECHNIQUES)
    if isinstance(model, str):
        model = load_model(model, **load_kw)
    ctx = ctx or RunContext()
    bench = bench or BenchConfig(threads=threads)
    sens = (
        sens
        if sens is not None and sens.by == "layer" and any(r["technique"] == technique for r in sens.rows)
        else sensitivity(model, [technique], threads=bench.threads, ctx=ctx, sparsity=sparsity)
    )
    ranking = [r["layer"] for r in sens.ranking(technique)]
    base_acc = sens.baseline.get("accuracy")
    history: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="wb-mixed-") as d:
        base = _onnx_baseline(model, ctx, bench.threads, Path(d) / "export")
        k = 0
        for k in range(len(ranking) + 1):
            cfg = SelectiveQuant(technique, keep=tuple(ranking[:k]), sparsity=sparsity)
            job = PassJob(
                model=model,
                ctx=ctx,
                workdir=Path(d) / f"k{k}",
                threads=bench.threads,
                stage=f"{model.name} / mixed {technique} / keep {k}",
            )
            m = _score(model, apply_pass(base, cfg, job), bench.threads, ctx, job.stage)
            drop = (
                (base_acc - m["accuracy"])
                if base_acc is not None and m.get("accuracy") is not None
                else 1.0 - (m.get("fidelity") or 0.0)
            )
            history.append((k, float(drop)))
            if drop <= max_drop:
                break
    kept = ranking[:k]
    steps = (SelectiveQuant(technique, keep=tuple(kept), sparsity=sparsity),)
    if model.baseline.kind == "torch":
        steps = (OnnxExport(), *steps)
    recipe = Recipe(
        f"mixed-{technique}(keep {len(kept)} float)",
        steps,
        f"{technique} everywhere except the {len(kept)} most sensitive layer(s), kept in float "
        f"so the accuracy drop stays within {100 * max_drop:g} points",
    )
    store = store if isinstance(store, RunStore) else RunStore(store)
    cand = run_recipe(model, recipe, store=store, bench=bench, ctx=ctx)
    return MixedPrecisionResult(recipe, cand, kept, history, max_drop)
