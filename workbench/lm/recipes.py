"""Named LM recipes and the perplexity degradation rule (registered on import)."""

from __future__ import annotations

from ..passes import Cast, DynamicInt8
from ..recipes.registry import Recipe, register_recipe
from .passes import LmOnnxExport, LmWeightOnly, TorchDynamicInt8

__all__ = ["LM_RECIPES"]

_E = LmOnnxExport()
LM_RECIPES: tuple[Recipe, ...] = (
    Recipe("lm-bf16", (Cast("bf16"),), "PyTorch in bfloat16: half the size, faster decode with avx512_bf16"),
    Recipe("lm-ort-fp32", (_E,), "ONNX Runtime FP32 decoder with KV cache: same numbers, less framework overhead"),
    Recipe(
        "lm-int8",
        (_E, LmWeightOnly(bits=8, lm_head_bits=8)),
        "8-bit weights in blocks of 32 (MatMulNBits), float activations, 4-bit embeddings: SmolLM2 +1.5 % "
        "perplexity at ~5x the FP32 decode speed",
    ),
    Recipe(
        "lm-ort-int8",
        (_E, DynamicInt8(per_channel=True, op_types=("MatMul",))),
        "ONNX Runtime dynamic INT8 (weights per channel, activations per tensor at run time); SmolLM2's "
        "activation outliers make it lose quality: compare with lm-int8",
    ),
    Recipe(
        "lm-int4",
        (_E, LmWeightOnly(block_size=32)),
        "4-bit weights in blocks of 32 (MatMulNBits), 4-bit embeddings and LM head",
    ),
    Recipe(
        "lm-int4-b64",
        (_E, LmWeightOnly(block_size=64)),
        "as lm-int4 with blocks of 64: the smallest candidate (SmolLM2 under 100 MB), lower quality",
    ),
    Recipe(
        "lm-int4-mixed",
        (_E, LmWeightOnly(block_size=32, lm_head_bits=8)),
        "4-bit blocks of 32, the LM head (the most sensitive layer) at 8 bit; see block_sensitivity for blocks",
    ),
    Recipe(
        "lm-torch-dynamic-int8",
        (TorchDynamicInt8(),),
        "torch quantize_dynamic, per-tensor int8: the known trap (perplexity jumps); flagged degraded",
    ),
)
for _r in LM_RECIPES:
    register_recipe(_r)
