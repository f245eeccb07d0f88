"""Lower-precision floats: BF16/FP16 in PyTorch, FP16 in ONNX Runtime.

BF16 pays off on CPUs with avx512_bf16 or AMX; FP16 without avx512_fp16 is emulated and usually
slower than FP32 on x86 (it halves size, not latency). Both are recorded honestly either way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

from ..core.artifact import Artifact, onnx_artifact, torch_artifact
from ..core.config import PassConfig, check_choice
from ..core.env import cpu_flags
from .registry import PassJob, register_pass

__all__ = ["Cast", "OnnxFp16"]


@dataclass(frozen=True)
class Cast(PassConfig):
    """Cast a PyTorch model's float weights to bf16 or fp16 (inputs are cast on the way in)."""

    kind: ClassVar[str] = "cast"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "torch"
    summary: ClassVar[str] = "store and compute weights in 16-bit floats (bf16 is fast with avx512_bf16/AMX)"

    dtype: str = "bf16"

    def validate(self) -> None:
        check_choice("Cast", "dtype", self.dtype, ("bf16", "fp16"))


@register_pass(Cast)
def _cast(art: Artifact, cfg: Cast, job: PassJob) -> Artifact:
    import torch

    job.ctx.begin(job.stage or "cast", total=1)
    dt = torch.bfloat16 if cfg.dtype == "bf16" else torch.float16
    m = copy.deepcopy(art.module).to(dt).eval()
    flags = cpu_flags()
    hw = ("avx512_bf16" in flags or "amx_bf16" in flags) if cfg.dtype == "bf16" else ("avx512_fp16" in flags)
    job.ctx.step()
    note = None if hw else f"this CPU has no native {cfg.dtype} arithmetic: expect a smaller model, not a faster one"
    return torch_artifact(
        m, art.input_names, **{**art.meta, "precision": cfg.dtype, "native_hw": hw, **({"note": note} if note else {})}
    )


@dataclass(frozen=True)
class OnnxFp16(PassConfig):
    """Convert an ONNX model to FP16 weights and compute, keeping FP32 inputs/outputs."""

    kind: ClassVar[str] = "onnx-fp16"
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"
    summary: ClassVar[str] = "FP16 ONNX model: half the size; slow on CPUs without avx512_fp16"

    keep_io_types: bool = True


@register_pass(OnnxFp16)
def _onnx_fp16(art: Artifact, cfg: OnnxFp16, job: PassJob) -> Artifact:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    job.ctx.begin(job.stage or "onnx-fp16", total=1)
    model = onnx.load(str(art.path))
    half = convert_float_to_float16(model, keep_io_types=cfg.keep_io_types, disable_shape_infer=True)
    out = job.out_path("model.onnx")
    onnx.save(half, str(out))
    job.ctx.step()
    return onnx_artifact(out, **{**art.meta, "precision": "fp16"})
