"""Selective quantization: one technique (INT8, INT4, pruning) applied to chosen weight layers only, the rest in float."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..core.artifact import Artifact, onnx_artifact
from ..core.config import PassConfig, check_choice, check_range
from ..core.errors import ConfigError, PassError
from .quantize import gemm_to_matmul, quiet_quantizer_logs
from .registry import PassJob, register_pass

__all__ = ["SelectiveQuant", "TECHNIQUES", "TECHNIQUE_OPS", "weight_layers"]

TECHNIQUES = ("int8", "int4", "prune")
#: the op types each technique can act on
TECHNIQUE_OPS = {"int8": ("MatMul", "Gemm", "Conv"), "int4": ("MatMul", "Gemm"), "prune": ("MatMul", "Gemm", "Conv")}


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
        if n.op_type in TECHNIQUE_OPS[technique] and len(n.input) > 1 and n.input[1] in inits:
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
