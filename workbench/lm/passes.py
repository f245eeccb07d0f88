"""Passes for causal LMs: ONNX export with the KV cache, weight-only INT4/INT8 with a mixed-precision
setting, and torch ``quantize_dynamic`` (kept so its known quality trap is reproducible and flagged).

>>> from workbench.lm import LmOnnxExport, LmWeightOnly
>>> LmWeightOnly(block_size=32, lm_head_bits=8).describe()
'lm-weight-only(lm_head_bits=8)'
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..core.artifact import Artifact, onnx_artifact, torch_artifact
from ..core.config import PassConfig, check_choice, check_range
from ..core.errors import ConfigError, ParityError, PassError
from ..passes.quantize import quiet_quantizer_logs
from ..passes.registry import PassJob, register_pass
from .task import lm_runner

__all__ = ["LmOnnxExport", "LmWeightOnly", "TorchDynamicInt8", "untie_lm_head", "lm_head_node"]


@dataclass(frozen=True)
class LmOnnxExport(PassConfig):
    """Export a causal LM to ONNX with its KV cache (optimum's exporter, task text-generation-with-past)."""

    kind: ClassVar[str] = "lm-onnx-export"
    contract_model: ClassVar[str] = "workbench.lm.testing:contract_torch_lm"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "onnx"
    summary: ClassVar[str] = "decoder with past key/values in ONNX Runtime; fails if logits differ by more than atol"

    #: optimum recommends >= 18 for Llama; ORT's 4-bit quantizer rejects some opset-17 Llama exports
    opset: int = 18
    #: max |onnx - torch| of the logits over a prompt and one cached step; FP32 exports differ by ~1e-4
    atol: float = 1e-2
    #: give lm_head its own weight instead of a Transpose of the tied embedding, so weight quantizers
    #: (dynamic-int8, lm-weight-only) see it as a constant MatMul and can quantize it
    untie_lm_head: bool = True

    def validate(self) -> None:
        check_range("LmOnnxExport", "opset", self.opset, 14, 23, integer=True)
        check_range("LmOnnxExport", "atol", self.atol, 0, 10, lo_open=True)


def lm_head_node(model):
    """The MatMul that produces the ``logits`` output (the LM head), or None."""
    producer = {o: n for n in model.graph.node for o in n.output}
    node = producer.get("logits")
    while node is not None and node.op_type != "MatMul":  # e.g. logits = Cast(MatMul(...))
        node = producer.get(node.input[0])
    return node


def untie_lm_head(model) -> bool:
    """Replace ``MatMul(x, Transpose(embedding))`` at the LM head by a MatMul with its own constant weight."""
    from onnx import numpy_helper

    head = lm_head_node(model)
    if head is None:
        return False
    inits = {i.name: i for i in model.graph.initializer}
    if head.input[1] in inits:
        return False
    producer = {o: n for n in model.graph.node for o in n.output}
    tr = producer.get(head.input[1])
    if tr is None or tr.op_type != "Transpose" or tr.input[0] not in inits:
        return False
    w = numpy_helper.to_array(inits[tr.input[0]]).T.copy()
    model.graph.initializer.append(numpy_helper.from_array(w, "lm_head.weight"))
    head.input[1] = "lm_head.weight"
    if not any(tr.output[0] in n.input for n in model.graph.node):
        model.graph.node.remove(tr)
    return True


def _parity(ref_art: Artifact, out: Artifact, job: PassJob, atol: float, what: str) -> float:
    cfg = job.model.info.get("hf_config")
    ids = job.model.data.eval.inputs["input_ids"][0][:16].astype(np.int64)
    ref, got = lm_runner(ref_art, job.threads, cfg), lm_runner(out, job.threads, cfg)
    r_logits, r_state = ref.prefill(ids)
    g_logits, g_state = got.prefill(ids)
    tok = int(np.argmax(r_logits))
    r2, _ = ref.step(tok, r_state)
    g2, _ = got.step(tok, g_state)
    diff = float(max(np.abs(r_logits - g_logits).max(), np.abs(r2 - g2).max()))
    if not np.isfinite(diff) or diff > atol:
        raise ParityError(
            f"{what} does not match PyTorch: max abs logit diff {diff:.3g} > atol {atol:g} "
            "(prefill of 16 tokens and one cached decode step).",
            diff,
            atol,
        )
    return diff


@register_pass(LmOnnxExport)
def _lm_export(art: Artifact, cfg: LmOnnxExport, job: PassJob) -> Artifact:
    import onnx
    import torch
    from optimum.exporters.onnx import onnx_export_from_model

    lm_runner(art)  # raises NotACausalLMError for anything but a ...ForCausalLM module
    module = getattr(art.module, "causal_lm", art.module)  # optimum needs the PreTrainedModel itself
    if any(p.dtype != torch.float32 for p in module.parameters() if p.is_floating_point()):
        raise PassError("lm-onnx-export needs a float32 model; quantize or cast after the export.")
    job.ctx.begin(job.stage or "lm-onnx-export", total=3, message="exporting with KV cache")
    out_dir = job.out_path("model.onnx").parent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            onnx_export_from_model(
                module, out_dir, opset=cfg.opset, task="text-generation-with-past", do_validation=False
            )
        except Exception as e:
            raise PassError(f"lm-onnx-export failed: {type(e).__name__}: {e}") from None
    path = out_dir / "model.onnx"
    untied = False
    if cfg.untie_lm_head:
        model = onnx.load(str(path))
        untied = untie_lm_head(model)
        if untied:
            onnx.save(model, str(path))
    job.ctx.step(message="parity check")
    out = onnx_artifact(
        path, **{**art.meta, "exported_from": "torch", "opset": cfg.opset, "kv_cache": True, "lm_head_untied": untied}
    )
    diff = _parity(art, out, job, cfg.atol, "The ONNX export")
    job.ctx.step(message=f"max abs logit diff {diff:.2g}")
    return out.with_meta(parity_max_abs_diff=diff)


@dataclass(frozen=True)
class LmWeightOnly(PassConfig):
    """Weight-only block quantization of an exported LM (ONNX Runtime MatMulNBits / GatherBlockQuantized).

    Every linear layer gets ``bits``-bit weights in blocks of ``block_size``; the mixed setting keeps
    the most sensitive parts at higher precision: the LM head (``lm_head_bits``), the token
    embeddings (``embedding_bits``) and any decoder blocks listed in ``keep_layers`` (``keep_bits``).
    """

    kind: ClassVar[str] = "lm-weight-only"
    contract_model: ClassVar[str] = "workbench.lm.testing:contract_onnx_lm"
    #: the contract's tiny Llama has random weights: int4 keeps its logit cosine at ~0.88, while trained
    #: models keep perplexity within a few % (bench/bench_lm.py)
    contract_min_fidelity: ClassVar[float] = 0.85
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"
    quantizes: ClassVar[bool] = True
    summary: ClassVar[str] = "int4 block-quantized weights; LM head, embeddings or chosen blocks may stay at 8/32 bit"

    bits: int = 4
    #: 32 weights per scale: the usual int4 quality/size balance (64 or 128 shrink scales, lose a little quality)
    block_size: int = 32
    symmetric: bool = True
    #: 4 = int8 compute of the dequantized blocks (fast on VNNI CPUs); 0 = fp32 compute
    accuracy_level: int = 4
    #: the LM head maps to a 49k vocabulary in SmolLM2: its errors hit every logit, so 8 bits is the safe mixed choice
    lm_head_bits: int = 4
    #: 4 = GatherBlockQuantized embeddings (the biggest tensor of a small LM); 32 = keep float
    embedding_bits: int = 4
    keep_layers: tuple[int, ...] = ()
    keep_bits: int = 8
    #: "rtn": round to nearest per block; "hqq": half-quadratic optimisation of scales and zero points
    #: (no calibration data; slower to quantize, closer to the float weights)
    algorithm: str = "rtn"

    def validate(self) -> None:
        check_choice("LmWeightOnly", "bits", self.bits, (4, 8))
        if self.block_size not in (16, 32, 64, 128, 256):
            raise ConfigError.out_of_range("LmWeightOnly", "block_size", self.block_size, "one of 16, 32, 64, 128, 256")
        check_choice("LmWeightOnly", "accuracy_level", self.accuracy_level, (0, 1, 2, 3, 4))
        check_choice("LmWeightOnly", "lm_head_bits", self.lm_head_bits, (4, 8, 32))
        check_choice("LmWeightOnly", "embedding_bits", self.embedding_bits, (4, 32))
        check_choice("LmWeightOnly", "keep_bits", self.keep_bits, (8, 32))
        check_choice("LmWeightOnly", "algorithm", self.algorithm, ("rtn", "hqq"))
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.keep_layers):
            raise ConfigError.out_of_range(
                "LmWeightOnly", "keep_layers", self.keep_layers, "a tuple of decoder block indices (ints >= 0)"
            )


def _layer_of(name: str) -> int | None:
    import re

    m = re.search(r"/layers\.(\d+)/", name)
    return int(m.group(1)) if m else None


def _nbits(model, bits: int, cfg: LmWeightOnly, include: list[str] | None, exclude: list[str], ops: tuple[str, ...]):
    from onnxruntime.quantization.matmul_nbits_quantizer import HQQWeightOnlyQuantConfig, MatMulNBitsQuantizer

    algo = None
    if cfg.algorithm == "hqq" and bits == 4 and ops == ("MatMul",):  # ORT runs 8-bit only with integer zero points
        algo = HQQWeightOnlyQuantConfig(block_size=cfg.block_size, bits=bits, op_types_to_quantize=ops)
    q = MatMulNBitsQuantizer(
        model,
        bits=bits,
        block_size=cfg.block_size,
        is_symmetric=cfg.symmetric,
        accuracy_level=cfg.accuracy_level or None,
        nodes_to_include=include,
        nodes_to_exclude=exclude,
        op_types_to_quantize=ops,
        algo_config=algo,
    )
    q.process()
    return q.model.model


@register_pass(LmWeightOnly)
@quiet_quantizer_logs()
def _lm_weight_only(art: Artifact, cfg: LmWeightOnly, job: PassJob) -> Artifact:
    import onnx

    job.ctx.begin(job.stage or "lm-weight-only", total=3, message="choosing precisions")
    model = onnx.load(str(art.path))
    untie_lm_head(model)
    head = lm_head_node(model)
    inits = {i.name for i in model.graph.initializer}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    if not matmuls:
        raise PassError("lm-weight-only found no MatMul with constant weights: export the model with lm-onnx-export.")
    n_layers = job.model.info.get("num_layers") or 0
    bad = [i for i in cfg.keep_layers if n_layers and i >= n_layers]
    if bad:
        raise ConfigError.out_of_range(
            "LmWeightOnly", "keep_layers", cfg.keep_layers, f"decoder block indices in [0, {n_layers - 1}]"
        )
    head_name = head.name if head is not None and head.input[1] in inits else None
    # every MatMul gets cfg.bits unless the mixed setting names another precision for it
    other: dict[int, list[str]] = {4: [], 8: [], 32: []}
    for n in matmuls:
        want = (
            cfg.lm_head_bits if n.name == head_name else cfg.keep_bits if _layer_of(n.name) in cfg.keep_layers else None
        )
        if want is not None and want != cfg.bits:
            other[want].append(n.name)
    kept = other[4] + other[8] + other[32]
    job.ctx.step(message=f"{len(matmuls) - len(kept)} MatMuls to {cfg.bits} bit")
    try:
        model = _nbits(model, cfg.bits, cfg, None, kept, ("MatMul",))
        job.ctx.step(message=f"{len(other[4]) + len(other[8])} MatMuls to another bit width")
        for bits in (4, 8):
            if other[bits]:
                model = _nbits(model, bits, cfg, other[bits], [], ("MatMul",))
        if cfg.embedding_bits == 4:  # GatherBlockQuantized exists for 4 bit only
            model = _nbits(model, 4, cfg, None, [], ("Gather",))
    except Exception as e:
        raise PassError(f"lm-weight-only failed: {type(e).__name__}: {e}") from None
    out = job.out_path("model.onnx")
    onnx.save(model, str(out))
    counts = {op: sum(1 for n in model.graph.node if n.op_type == op) for op in ("MatMulNBits", "GatherBlockQuantized")}
    job.ctx.step()
    return onnx_artifact(
        out,
        **{
            **art.meta,
            "precision": f"int{cfg.bits}-weight-only",
            "block_size": cfg.block_size,
            "nbits_matmuls": counts["MatMulNBits"],
            "quantized_embeddings": counts["GatherBlockQuantized"] > 0,
            "lm_head_bits": cfg.lm_head_bits if head_name else None,
            "kept_8bit": other[8] if cfg.bits == 4 else [],
            "kept_float": other[32],
        },
    )


@dataclass(frozen=True)
class TorchDynamicInt8(PassConfig):
    """PyTorch ``quantize_dynamic``: int8 nn.Linear weights with one scale per tensor, int8 activations
    at run time. Known to break small LMs (SmolLM2 perplexity ~5x): kept so the trap is measured."""

    kind: ClassVar[str] = "torch-dynamic-int8"
    contract_model: ClassVar[str] = "workbench.lm.testing:contract_torch_lm"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "torch"
    quantizes: ClassVar[bool] = True
    summary: ClassVar[str] = "torch quantize_dynamic on every nn.Linear (per-tensor int8): cheap, often breaks LMs"


@register_pass(TorchDynamicInt8)
def _torch_dynamic(art: Artifact, cfg: TorchDynamicInt8, job: PassJob) -> Artifact:
    import torch
    from safetensors.torch import save_file

    job.ctx.begin(job.stage or "torch-dynamic-int8", total=1, message="quantize_dynamic")
    if any(p.dtype != torch.float32 for p in art.module.parameters() if p.is_floating_point()):
        raise PassError("torch-dynamic-int8 needs a float32 model.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated but still the API this pass reproduces
        m = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(art.module).eval(), {torch.nn.Linear}, dtype=torch.qint8
        )
    # quantized Linear weights are not plain tensors: store their int8 values and scales, so the file
    # (and its size) is what a device would hold
    tensors: dict[str, torch.Tensor] = {}
    for name, mod in m.named_modules():
        if isinstance(mod, torch.ao.nn.quantized.dynamic.Linear):
            w = mod.weight()
            tensors[f"{name}.weight_int8"] = w.int_repr().contiguous()
            tensors[f"{name}.weight_scale"] = torch.tensor([w.q_scale()], dtype=torch.float32)
            if mod.bias() is not None:
                tensors[f"{name}.bias"] = mod.bias().detach().contiguous()
    for name, p in m.named_parameters():
        tensors.setdefault(name, p.detach().contiguous())
    path = job.out_path("model.safetensors")
    save_file(tensors, str(path))
    job.ctx.step()
    return torch_artifact(
        m, art.input_names, path=path, **{**art.meta, "precision": "int8-dynamic-torch", "granularity": "per-tensor"}
    )
