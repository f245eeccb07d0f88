"""Causal language models on a laptop: perplexity, tokens per second and low-bit weights.

Importing this package registers the bundled model ``smollm2``, the LM passes (``lm-onnx-export``,
``lm-weight-only``, ``torch-dynamic-int8``), the LM recipes (``lm-*``) and the perplexity
degradation rule. Nothing heavy happens at import: models load on ``load_model``.

>>> import workbench as wb
>>> m = wb.load_model("smollm2", n_eval=16)                          # doctest: +SKIP
>>> cands = wb.optimize(m, ["lm-bf16", "lm-int4"])                   # doctest: +SKIP
>>> [(c.recipe_name, round(c.metrics["perplexity"], 2), round(c.metrics["tokens_per_s"])) for c in cands]
"""

from __future__ import annotations

from .corpus import CORPUS_SOURCE, PROMPTS, lm_corpus
from .loader import SMOLLM2, convert_gguf, load_causal_lm, smollm2_gguf_path
from .passes import LmOnnxExport, LmWeightOnly, TorchDynamicInt8
from .recipes import LM_RECIPES
from .sensitivity import block_sensitivity, most_sensitive_layers
from .task import (
    MAX_PERPLEXITY_INCREASE,
    CausalLM,
    LMEvalSpec,
    NotACausalLMError,
    generate,
    lm_runner,
    perplexity_rule,
)

__all__ = [
    "CORPUS_SOURCE",
    "PROMPTS",
    "lm_corpus",
    "SMOLLM2",
    "convert_gguf",
    "load_causal_lm",
    "smollm2_gguf_path",
    "LmOnnxExport",
    "LmWeightOnly",
    "TorchDynamicInt8",
    "LM_RECIPES",
    "block_sensitivity",
    "most_sensitive_layers",
    "MAX_PERPLEXITY_INCREASE",
    "CausalLM",
    "LMEvalSpec",
    "NotACausalLMError",
    "generate",
    "lm_runner",
    "perplexity_rule",
]
