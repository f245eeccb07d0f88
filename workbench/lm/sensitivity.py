"""Which parts of an LM suffer most from low-bit weights: quantize one part at a time, measure perplexity.

The answer feeds the mixed setting of :class:`~workbench.lm.passes.LmWeightOnly`: keep the blocks at
the top of the list at 8 bit (``keep_layers``), quantize the rest to 4 bit.

>>> parts = block_sensitivity(model, exported, n_docs=4)         # doctest: +SKIP
>>> LmWeightOnly(keep_layers=most_sensitive_layers(parts, 2))     # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..core.artifact import Artifact
from ..core.context import RunContext
from ..core.errors import PassError
from ..passes.registry import PassJob, apply_pass
from .passes import LmWeightOnly
from .task import lm_runner, perplexity

__all__ = ["block_sensitivity", "most_sensitive_layers"]


def block_sensitivity(
    model,
    exported: Artifact,
    *,
    bits: int = 4,
    block_size: int = 32,
    n_docs: int = 4,
    threads: int | None = None,
    ctx: RunContext | None = None,
) -> list[dict[str, Any]]:
    """Perplexity when only one part (a decoder block, the LM head, the embeddings) gets ``bits``-bit weights.

    ``exported`` is the FP32 ONNX decoder (the output of ``lm-onnx-export``). Returns one dict per part,
    most sensitive first: ``{"part", "layer", "perplexity", "increase"}`` (increase relative to FP32).
    """
    if exported.kind != "onnx":
        raise PassError("block_sensitivity needs the exported ONNX decoder (run the lm-onnx-export pass first).")
    ctx = ctx or RunContext()
    cfg = model.info.get("hf_config")
    inputs = {k: v[:n_docs] for k, v in model.data.eval.inputs.items()}
    base = perplexity(lm_runner(exported, threads, cfg), inputs)["perplexity"]
    n = int(model.info.get("num_layers") or 0)
    everything_float = {"lm_head_bits": 32, "embedding_bits": 32, "keep_bits": 32}
    parts: list[tuple[str, int | None, LmWeightOnly]] = [
        (
            f"block {i}",
            i,
            LmWeightOnly(
                bits=bits, block_size=block_size, **everything_float, keep_layers=tuple(j for j in range(n) if j != i)
            ),
        )
        for i in range(n)
    ]
    parts.append(
        (
            "lm_head",
            None,
            LmWeightOnly(
                bits=bits,
                block_size=block_size,
                embedding_bits=32,
                keep_bits=32,
                lm_head_bits=bits,
                keep_layers=tuple(range(n)),
            ),
        )
    )
    ctx.begin("block sensitivity", total=len(parts))
    out = []
    for name, layer, part_cfg in parts:
        work = Path(tempfile.mkdtemp(prefix="wb-sens-"))
        try:
            art = apply_pass(exported, part_cfg, PassJob(model=model, ctx=ctx, workdir=work, threads=threads))
            ppl = perplexity(lm_runner(art, threads, cfg), inputs)["perplexity"]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out.append({"part": name, "layer": layer, "perplexity": ppl, "increase": ppl / base - 1})
        ctx.step(message=f"{name}: {100 * (ppl / base - 1):+.2f} %")
    return sorted(out, key=lambda r: -r["increase"])


def most_sensitive_layers(parts: list[dict[str, Any]], k: int) -> tuple[int, ...]:
    """The ``k`` decoder blocks whose quantization hurt perplexity most (for ``LmWeightOnly.keep_layers``)."""
    return tuple(sorted(r["layer"] for r in [p for p in parts if p["layer"] is not None][:k]))
