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
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .artifact import Artifact, onnx_artifact
from .benchmark import BenchConfig
from .candidate import Candidate
from .config import PassConfig, check_choice, check_range
from .context import RunContext
from .errors import ConfigError, PassError, WorkbenchError
from .evaluate import predict
from .models import LoadedModel
from .passes import OnnxExport, PassJob, apply_pass, register_pass
from .passes.quantize import gemm_to_matmul, quiet_quantizer_logs
from .recipes import Recipe
from .store import RunStore

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

TECHNIQUES = ("int8", "int4", "prune")
_OPS = {"int8": ("MatMul", "Gemm", "Conv"), "int4": ("MatMul", "Gemm"), "prune": ("MatMul", "Gemm", "Conv")}


@dataclass(frozen=True)
class SelectiveQuant(PassConfig):
    """One technique on chosen layers only (``only``) or on all but some (``keep``, left in float)."""

    kind: ClassVar[str] = "selective"
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"
    quantizes: ClassVar[bool] = True
    summary: ClassVar[str] = "int8 / int4 / pruning on chosen layers; the rest stay float (mixed precision)"

    technique: str = "int8"
    #: apply to these node names only (empty = every eligible layer)
    only: tuple[str, ...] = ()
    #: never touch these node names (the most sensitive layers, kept at higher precision)
    keep: tuple[str, ...] = ()
    #: prune: share of each chosen layer's weights set to zero
    sparsity: float = 0.5
    #: int4: weights per scale
    block_size: int = 32

    def validate(self) -> None:
        check_choice("SelectiveQuant", "technique", self.technique, TECHNIQUES)
        check_range("SelectiveQuant", "sparsity", self.sparsity, 0, 1, hi_open=True)
        if self.block_size not in (16, 32, 64, 128, 256):
            raise ConfigError.out_of_range(
                "SelectiveQuant", "block_size", self.block_size, "one of 16, 32, 64, 128, 256"
            )
        if set(self.only) & set(self.keep):
            raise ConfigError(
                f"SelectiveQuant: node(s) {sorted(set(self.only) & set(self.keep))} are both in 'only' "
                "and in 'keep'; a layer is either changed or kept."
            )


def weight_layers(model, technique: str = "int8") -> list[dict[str, Any]]:
    """Layers with a constant weight that ``technique`` can change: name, op type, weight, parameter count."""
    check_choice("weight_layers", "technique", technique, TECHNIQUES)
    inits = {i.name: i for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type in _OPS[technique] and len(n.input) > 1 and n.input[1] in inits:
            dims = list(inits[n.input[1]].dims)
            if n.op_type == "MatMul" and len(dims) != 2:
                continue
            out.append(
                {
                    "layer": n.name,
                    "op_type": n.op_type,
                    "weight": n.input[1],
                    "params": int(np.prod(dims)) if dims else 1,
                }
            )
    return out


def _renamed(names: Sequence[str], model) -> list[str]:
    """Node names after gemm_to_matmul (a Gemm ``g`` becomes MatMul ``g_MatMul``)."""
    present = {n.name for n in model.graph.node}
    return [n if n in present else f"{n}_MatMul" for n in names]


@register_pass(SelectiveQuant)
@quiet_quantizer_logs()
def _selective(art: Artifact, cfg: SelectiveQuant, job: PassJob) -> Artifact:
    import onnx
    from onnx import numpy_helper

    job.ctx.begin(
        job.stage or "selective",
        total=1,
        message=f"{cfg.technique} on "
        + (f"{len(cfg.only)} layer(s)" if cfg.only else f"all but {len(cfg.keep)} layer(s)"),
    )
    model = onnx.load(str(art.path))
    known = {n.name for n in model.graph.node}
    unknown = [n for n in (*cfg.only, *cfg.keep) if n not in known]
    if unknown:
        raise PassError(
            f"selective: no node named {unknown[0]!r} in this model. Node names come from "
            "weight_layers(onnx model) or a sensitivity table."
        )
    eligible = [d["layer"] for d in weight_layers(model, cfg.technique)]
    chosen = [n for n in (cfg.only or eligible) if n in eligible and n not in cfg.keep]
    out = job.out_path("model.onnx")
    if not chosen:
        onnx.save(model, str(out))  # nothing to change: the float model, recorded honestly as such
    elif cfg.technique == "prune":
        inits = {i.name: i for i in model.graph.initializer}
        nodes = {n.name: n for n in model.graph.node}
        for name in chosen:
            init = inits[nodes[name].input[1]]
            w = numpy_helper.to_array(init).copy()
            k = int(cfg.sparsity * w.size)
            if k:
                thresh = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
                w[np.abs(w) <= thresh] = 0
            init.CopyFrom(numpy_helper.from_array(w, init.name))
        onnx.save(model, str(out))
    else:
        gemm_to_matmul(model)  # Linear layers exported as Gemm become quantizable MatMuls
        chosen = _renamed(chosen, model)
        try:
            if cfg.technique == "int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(
                    model,
                    str(out),
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul", "Conv"],
                    nodes_to_quantize=chosen,
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
                )
            else:
                from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

                q = MatMulNBitsQuantizer(
                    model,
                    bits=4,
                    block_size=cfg.block_size,
                    is_symmetric=True,
                    accuracy_level=4,
                    nodes_to_include=chosen,
                    op_types_to_quantize=("MatMul",),
                )
                q.process()
                q.model.save_model_to_file(str(out), use_external_data_format=False)
        except Exception as e:
            raise PassError(f"selective {cfg.technique} failed: {type(e).__name__}: {e}") from None
    job.ctx.step()
    return onnx_artifact(
        out,
        **{
            **art.meta,
            "precision": f"{cfg.technique}-mixed" if cfg.keep else cfg.technique,
            "changed_layers": len(chosen),
            "kept_float": list(cfg.keep),
        },
    )


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
    from .models import load_model

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
                    f"(it needs {', '.join(_OPS[tech])} nodes with constant weights)."
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
    from .models import load_model
    from .optimize import run_recipe

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
