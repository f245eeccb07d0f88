"""One runner protocol over PyTorch and ONNX Runtime causal LMs (full-sequence scoring, prefill, cached decode), perplexity and greedy decoding."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..core.artifact import Artifact, ort_session
from ..core.context import RunContext
from ..core.errors import WorkbenchError
from ..measure.evaluate import NonFiniteOutputError


class NotACausalLMError(WorkbenchError, TypeError):
    """A model given to the causal-LM task does not predict next-token logits."""


# ---- runners: one protocol over PyTorch modules and ONNX Runtime sessions --------------------
class LMRunner:
    """Next-token logits for one sequence (batch 1): full-sequence scoring, prefill, cached decode steps."""

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """(L,) token ids -> (L, vocab) float32 logits, no cache."""
        raise NotImplementedError

    def prefill(self, ids: np.ndarray) -> tuple[np.ndarray, Any]:
        """Run a prompt; returns the last position's logits and the KV cache."""
        raise NotImplementedError

    def step(self, token: int, state: Any) -> tuple[np.ndarray, Any]:
        """One decode step with the cache; returns the new logits and the grown cache."""
        raise NotImplementedError


class _TorchLM(LMRunner):
    def __init__(self, module, threads: int | None):
        import torch

        self.torch, self.module = torch, module
        if threads:
            torch.set_num_threads(threads)
        module.eval()

    def logits(self, ids):
        with self.torch.inference_mode():
            out = self.module(input_ids=self.torch.from_numpy(ids)[None], use_cache=False, return_dict=True)
        return out.logits[0].float().numpy()

    def prefill(self, ids):
        with self.torch.inference_mode():
            out = self.module(input_ids=self.torch.from_numpy(ids)[None], use_cache=True, return_dict=True)
        return out.logits[0, -1].float().numpy(), out.past_key_values

    def step(self, token, state):
        with self.torch.inference_mode():
            out = self.module(
                input_ids=self.torch.tensor([[token]]), past_key_values=state, use_cache=True, return_dict=True
            )
        return out.logits[0, -1].float().numpy(), out.past_key_values


class OrtLM(LMRunner):
    """Drives an exported decoder-with-past directly: inputs input_ids, attention_mask, position_ids,
    past_key_values.N.key/value; outputs logits, present.N.key/value (optimum's export layout)."""

    _NP = {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
    }

    def __init__(self, path, threads: int | None, config=None):
        self.sess = ort_session(path, threads)
        ins = {i.name: i for i in self.sess.get_inputs()}
        outs = [o.name for o in self.sess.get_outputs()]
        if "input_ids" not in ins or not outs or outs[0] != "logits":
            raise NotACausalLMError(
                f"The causal-LM task needs an ONNX decoder with an 'input_ids' input and a 'logits' output; {path} "
                f"has inputs {sorted(ins)} and outputs {outs}. Export it with the 'lm-onnx-export' pass."
            )
        self.ids_type = self._NP.get(ins["input_ids"].type, np.int64)
        self.past = [n for n in ins if n.startswith("past_key_values.")]
        self.present = {n: "present." + n[len("past_key_values.") :] for n in self.past}
        self.has_mask, self.has_pos = "attention_mask" in ins, "position_ids" in ins
        self.empty = {}
        for n in self.past:
            shape = ins[n].shape  # [batch, kv_heads, past_len, head_dim], the middle ones may be symbolic
            heads = shape[1] if isinstance(shape[1], int) else _kv_heads(config)
            dim = shape[3] if isinstance(shape[3], int) else _head_dim(config)
            self.empty[n] = np.zeros((1, heads, 0, dim), dtype=self._NP.get(ins[n].type, np.float32))
        self.out_names = outs

    def _feed(self, ids: np.ndarray, past: dict, past_len: int) -> dict:
        n = len(ids)
        feed = {"input_ids": ids.astype(self.ids_type, copy=False)[None]}
        if self.has_mask:
            feed["attention_mask"] = np.ones((1, past_len + n), dtype=np.int64)
        if self.has_pos:
            feed["position_ids"] = np.arange(past_len, past_len + n, dtype=np.int64)[None]
        feed.update(past)
        return feed

    def _run(self, ids, past, past_len):
        outs = self.sess.run(None, self._feed(ids, past, past_len))
        by_name = dict(zip(self.out_names, outs))
        new_past = {n: by_name[p] for n, p in self.present.items()} if self.past else {}
        return np.asarray(outs[0][0], dtype=np.float32), (new_past, past_len + len(ids))

    def logits(self, ids):
        return self._run(ids, self.empty, 0)[0]

    def prefill(self, ids):
        logits, state = self._run(ids, self.empty, 0)
        return logits[-1], state

    def step(self, token, state):
        past, past_len = state
        if not self.past:  # a decoder without a cache input: rerun the whole sequence (slow, but right)
            raise NotACausalLMError("This ONNX decoder has no past_key_values inputs: export it with KV cache.")
        logits, state = self._run(np.array([token], dtype=np.int64), past, past_len)
        return logits[-1], state

    def feed_for(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        return self._feed(ids, self.empty, 0)


def _kv_heads(config) -> int:
    return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)


def _head_dim(config) -> int:
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def lm_runner(art: Artifact, threads: int | None = None, config=None) -> LMRunner:
    """An :class:`LMRunner` for a torch causal LM or an ONNX decoder exported with its KV cache."""
    if art.kind == "torch":
        module = art.module
        name = type(module).__name__
        if not (name.endswith("ForCausalLM") or getattr(module, "_is_causal_lm", False)) or not hasattr(
            module, "config"
        ):
            raise NotACausalLMError(
                f"The causal-LM task needs a Hugging Face ...ForCausalLM module (next-token logits with a KV cache). "
                f"Got {name}. Use the classification or embedding tasks for other models."
            )
        return _TorchLM(module, threads)
    return OrtLM(art.path, threads, config)


def greedy_decode(
    runner: LMRunner, prompt: np.ndarray, n: int, eos: frozenset[int] = frozenset(), timed: bool = False
) -> tuple[list[int], list[float]]:
    """Greedy generation of up to ``n`` tokens with the KV cache; per-step times (ms) when ``timed``."""
    logits, state = runner.prefill(prompt)
    out: list[int] = []
    times: list[float] = []
    for _ in range(n):
        tok = int(np.argmax(logits))
        out.append(tok)
        if tok in eos:
            break
        t0 = time.perf_counter()
        logits, state = runner.step(tok, state)
        if timed:
            times.append((time.perf_counter() - t0) * 1e3)
    return out, times


def perplexity(
    runner: LMRunner,
    inputs: dict[str, np.ndarray],
    *,
    ctx: RunContext | None = None,
    stage: str = "perplexity",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Corpus perplexity (token-weighted) with a 95 % bootstrap CI over documents."""
    import torch

    ids, mask = inputs["input_ids"], inputs["attention_mask"].astype(bool)
    if ctx:
        ctx.begin(stage, total=len(ids))
    nll_sum = np.zeros(len(ids))
    count = np.zeros(len(ids))
    for i in range(len(ids)):
        doc = ids[i][mask[i]]
        logits = torch.from_numpy(runner.logits(doc)[:-1]).float()
        if not torch.isfinite(logits).all():
            raise NonFiniteOutputError(f"The model produced non-finite logits on corpus document {i}.")
        # float32 log-softmax over the vocabulary (torch: several times faster than numpy on 49k-wide rows)
        nll = torch.nn.functional.cross_entropy(logits, torch.from_numpy(doc[1:]), reduction="sum")
        nll_sum[i] = float(nll)
        count[i] = len(doc) - 1
        if ctx:
            ctx.step()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ids), size=(n_boot, len(ids)))
    boot = np.exp(nll_sum[idx].sum(1) / count[idx].sum(1))
    return {
        "perplexity": float(np.exp(nll_sum.sum() / count.sum())),
        "perplexity_ci": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "nll_per_token": float(nll_sum.sum() / count.sum()),
        "eval_tokens": int(count.sum()),
        "n_eval": int(len(ids)),
    }
