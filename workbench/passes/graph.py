"""ONNX Runtime graph optimization: transformer fusions where they apply, ORT's own rewrites elsewhere."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from ..core.artifact import Artifact, onnx_artifact, set_session_hints
from ..core.config import PassConfig, check_choice
from ..core.errors import PassError
from .registry import PassJob, register_pass

__all__ = ["OrtOptimize", "BERT_LIKE"]

#: model types whose attention/LayerNorm/GELU patterns onnxruntime.transformers fuses as "bert"
BERT_LIKE = ("bert", "roberta", "distilbert", "xlm-roberta", "electra", "camembert", "mpnet", "minilm")


@dataclass(frozen=True)
class OrtOptimize(PassConfig):
    """Fuse attention, LayerNorm, GELU (transformers) or apply ORT graph rewrites offline."""

    kind: ClassVar[str] = "ort-optimize"
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"
    summary: ClassVar[str] = "fuse attention/LayerNorm/GELU into single kernels (fewer, faster ops)"

    #: ORT rewrites for non-transformer graphs. "basic" (constant folding, redundant-node removal) keeps
    #: standard ONNX ops, so quantizers downstream still recognise Conv/Gemm; ORT applies its extended
    #: fusions itself when a session loads the model. "all" adds layout changes tied to this CPU.
    level: str = "basic"
    #: "auto" fuses transformer blocks when the model is BERT-like; "none" only runs ORT rewrites
    fusions: str = "auto"
    #: fuse each residual Add + LayerNorm into one SkipLayerNormalization. Off by default: on CPU, ORT's
    #: SkipLayerNormalization kernel is several times slower than Add + LayerNormalization (0.25 vs 0.04 ms
    #: at 128x384 on one core, onnxruntime 1.32) and slows the MatMuls around it; the model then carries a
    #: hint (metadata ``workbench.ort.disabled_optimizers``) that stops ORT re-fusing them at load time.
    skip_layernorm: bool = False
    #: GELU as the tanh approximation (FastGelu) instead of erf (BiasGelu): cheaper, ~1e-3 max difference
    gelu_approximation: bool = False

    def validate(self) -> None:
        check_choice("OrtOptimize", "level", self.level, ("basic", "extended", "all"))
        check_choice("OrtOptimize", "fusions", self.fusions, ("auto", "bert", "none"))


def _pruned_heads_note(record: logging.LogRecord) -> bool:
    """Drop ONNX Runtime's warning that q/k/v are narrower than their input: that is what a student that lost
    attention heads is (its fused Attention is exact: tests/test_nas.py compares it with PyTorch)."""
    return not str(record.msg).startswith("Input hidden size (%d) is not same as weight matrix dimension")


logging.getLogger("fusion_attention").addFilter(_pruned_heads_note)


def _op_counts(path) -> dict[str, int]:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return dict(Counter(n.op_type for n in m.graph.node))


@register_pass(OrtOptimize)
def _optimize(art: Artifact, cfg: OrtOptimize, job: PassJob) -> Artifact:
    import onnxruntime as ort

    info = job.model.info
    bert = cfg.fusions == "bert" or (cfg.fusions == "auto" and info.get("model_type") in BERT_LIKE)
    job.ctx.begin(job.stage or "ort-optimize", total=1, message="fusing" if bert else "optimizing")
    out = job.out_path("model.onnx")
    before = _op_counts(art.path)
    if bert:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        options = FusionOptions("bert")
        options.enable_skip_layer_norm = cfg.skip_layernorm
        options.enable_gelu_approximation = cfg.gelu_approximation
        try:
            opt = optimize_model(
                str(art.path),
                model_type="bert",
                # a student that lost heads says how many it kept in its own meta (the hidden size, the input
                # width of q/k/v, is the model's still)
                num_heads=int(art.meta.get("num_heads", info.get("num_heads")) or 0),
                hidden_size=int(info.get("hidden_size") or 0),
                opt_level=1,
                use_gpu=False,
                optimization_options=options,
            )
            if not cfg.skip_layernorm:
                set_session_hints(opt.model, disabled_optimizers=("SkipLayerNormFusion",))
            opt.save_model_to_file(str(out))
        except Exception as e:
            raise PassError(f"ort-optimize (transformer fusions) failed: {type(e).__name__}: {e}") from None
    else:
        so = ort.SessionOptions()
        so.graph_optimization_level = {
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[cfg.level]
        so.optimized_model_filepath = str(out)
        so.log_severity_level = 3
        ort.InferenceSession(str(art.path), so, providers=["CPUExecutionProvider"])
    after = _op_counts(out)
    job.ctx.step()
    fused = {k: v for k, v in after.items() if k not in before}
    return onnx_artifact(
        out,
        **{**art.meta, "fused_ops": fused, "nodes_before": sum(before.values()), "nodes_after": sum(after.values())},
    )
