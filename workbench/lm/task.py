"""The causal-LM task: perplexity with a CI, prefill latency, decode tokens/s, memory, size, samples.

``optimize.measure`` hands LM candidates to :meth:`CausalLM.measure` (the task's own protocol)
instead of the batch-classification path. The metrics it returns:

- ``perplexity``: exp(mean next-token NLL) over every scored token of the corpus documents;
  ``perplexity_ci`` a 95 % percentile bootstrap over documents (fixed seed, so reruns agree).
- ``prefill_ms``: median time to run a ``prompt_len``-token prompt through the model (no cache yet).
- ``p50_ms`` / ``p90_ms``: per-token **decode** latency with the KV cache (batch 1, greedy), so the
  pipeline's generic ``speedup`` (baseline p50 / candidate p50) is the decode-speed ratio;
  ``tokens_per_s`` = 1000 / mean decode step.
- ``peak_mem_bytes``: torch: weight bytes plus the RSS added at the peak of a prefill + decode;
  ONNX Runtime: peak RSS of a fresh process that loads the model and runs the prefill.
- ``samples``: greedy completions of :data:`~workbench.lm.corpus.PROMPTS`, stored with the candidate.

>>> m = load_model("smollm2", n_eval=8)                 # doctest: +SKIP
>>> m.task.measure(m, m.baseline, bench=BenchConfig(), ctx=RunContext(), stage="fp32")["perplexity"]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from ..artifact import Artifact, ort_session
from ..benchmark import BenchConfig, measure_peak_rss, onnx_inference_memory
from ..config import check_range
from ..context import RunContext
from ..errors import DataError, WorkbenchError
from ..evaluate import NonFiniteOutputError
from ..tasks.base import Task, fmt, fmt_mb, fmt_ms
from .corpus import PROMPTS

__all__ = [
    "LMEvalSpec",
    "CausalLM",
    "LMRunner",
    "lm_runner",
    "generate",
    "perplexity_rule",
    "NotACausalLMError",
    "MAX_PERPLEXITY_INCREASE",
]

#: a candidate whose perplexity exceeds the baseline's by more than this fraction is flagged degraded.
#: 25 % is far outside run-to-run noise (perplexity is deterministic) and well below the ~5x jump of
#: torch quantize_dynamic on SmolLM2, yet lets the usual INT8/INT4 costs (a few %) through.
MAX_PERPLEXITY_INCREASE = 0.25


class NotACausalLMError(WorkbenchError, TypeError):
    """A model given to the causal-LM task does not predict next-token logits."""


@dataclass(frozen=True)
class LMEvalSpec:
    #: 32 documents x 256 tokens: ~8k scored tokens, a CI of about +-5 % for SmolLM2, ~10 s per candidate
    n_docs: int = 32
    seq_len: int = 256
    #: the prefill measurement's prompt length: a short chat turn with some context
    prompt_len: int = 128
    #: decode steps per timed round (the KV cache grows from prompt_len to prompt_len + decode_tokens)
    decode_tokens: int = 32
    #: new tokens per generation sample (enough for a sentence)
    sample_tokens: int = 24

    def __post_init__(self) -> None:
        check_range("LMEvalSpec", "n_docs", self.n_docs, 1, 100_000, integer=True)
        check_range("LMEvalSpec", "seq_len", self.seq_len, 2, 1 << 20, integer=True)
        check_range("LMEvalSpec", "prompt_len", self.prompt_len, 1, 1 << 20, integer=True)
        check_range("LMEvalSpec", "decode_tokens", self.decode_tokens, 1, 4096, integer=True)
        check_range("LMEvalSpec", "sample_tokens", self.sample_tokens, 1, 4096, integer=True)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


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


class _OrtLM(LMRunner):
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
    return _OrtLM(art.path, threads, config)


# ---- the task ----------------------------------------------------------------------------------
class CausalLM(Task):
    name: ClassVar[str] = "causal-lm"
    #: judged on what a chat user feels: how well it predicts text, and decode speed
    quality_metrics: ClassVar[tuple[str, ...]] = ("perplexity",)
    speed_metric: ClassVar[str] = "tokens_per_s"
    #: recipes `optimize` runs for this task when none are named
    default_recipes: ClassVar[tuple[str, ...]] = ("lm-bf16", "lm-int8", "lm-ort-int8", "lm-int4", "lm-int4-mixed")

    def __init__(
        self,
        spec: LMEvalSpec,
        tokenizer,
        context_window: int | None = None,
        prompts: tuple[str, ...] = PROMPTS,
        eos_ids: tuple[int, ...] = (),
    ):
        self.spec, self.tokenizer, self.context_window, self.prompts = spec, tokenizer, context_window, prompts
        # chat models end a turn with their own token (SmolLM2: <|im_end|>), often not the tokenizer's eos
        self.eos_ids = frozenset(i for i in (*eos_ids, tokenizer.eos_token_id) if i is not None)

    def check_prompt_length(self, n_tokens: int, what: str = "prompt") -> None:
        """Raise DataError if ``n_tokens`` do not fit the model's context window."""
        if self.context_window and n_tokens > self.context_window:
            raise DataError(
                f"The {what} needs {n_tokens} tokens but the model's context window is {self.context_window} tokens "
                f"(max_position_embeddings). Shorten it to at most {self.context_window} tokens."
            )

    def metrics(self, outputs, labels, reference):  # the batch path does not apply to LMs
        raise WorkbenchError(
            "The causal-LM task is measured with CausalLM.measure (perplexity, tokens/s), not from batch outputs."
        )

    @classmethod
    def relative(cls, m: dict[str, Any], base) -> dict[str, Any]:
        m = super().relative(m, base)
        if base and base.get("perplexity") and m.get("perplexity") is not None:  # what an LM budget limits
            m["perplexity_increase"] = m["perplexity"] / base["perplexity"] - 1
        return m

    @classmethod
    def degradation(cls, metrics, base) -> str | None:
        return perplexity_rule(metrics, base)

    @classmethod
    def table_rows(cls, cands) -> list[dict[str, str]]:
        """The columns ``workbench optimize`` / ``workbench runs`` print for causal LMs.

        >>> CausalLM.table_rows(store.candidates("smollm2"))[0]["ppl [95% CI]"]   # doctest: +SKIP
        '16.02 [14.90, 17.31]'
        """
        base = next((c.metrics for c in cands if not c.recipe.get("steps") and c.metrics.get("perplexity")), None)
        rows = []
        for c in cands:
            m = c.metrics
            ppl, ci = m.get("perplexity"), m.get("perplexity_ci")
            rise = None if ppl is None or not base else ppl / base["perplexity"] - 1
            rows.append(
                {
                    "id": c.id,
                    "recipe": c.recipe_name,
                    "runtime": c.runtime,
                    "status": c.status,
                    "tok/s": fmt(m.get("tokens_per_s"), ".1f"),
                    "speedup": fmt(m.get("speedup"), ".2f") + ("x" if m.get("speedup") else ""),
                    "prefill ms": fmt(m.get("prefill_ms"), ".1f"),
                    "ppl [95% CI]": "-"
                    if ppl is None
                    else (f"{ppl:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{ppl:.2f}"),
                    "ppl +%": fmt(rise, "+.1f", 100),
                    "size MB": fmt(m.get("size_bytes"), ".1f", 1e-6),
                    "mem MB": fmt(m.get("peak_mem_bytes"), ".1f", 1e-6),
                    "note": (c.error or "")[:60],
                }
            )
        return rows

    @classmethod
    def summary(cls, c) -> str:
        return (
            f"{c.recipe_name} · {c.id[:4]} [{c.status}] {fmt(c.get('tokens_per_s'), '.3g')} tok/s "
            f"ppl {fmt(c.get('perplexity'), '.4g')}"
        )

    @classmethod
    def describe(cls, c) -> str:
        """Decode speed, prompt time, size, perplexity (and its rise over FP32)."""
        rise = c.get("perplexity_increase")
        return ", ".join(
            [
                f"{fmt(c.get('tokens_per_s'), '.1f')} tokens/s",
                f"prefill {fmt_ms(c.get('prefill_ms'))}",
                fmt_mb(c.get("size_bytes")),
                f"perplexity {fmt(c.get('perplexity'), '.2f')}"
                + (f" ({100 * rise:+.1f} %)" if rise is not None else ""),
            ]
        )

    @classmethod
    def describe_baseline(cls, c) -> str:
        return f"{fmt(c.get('tokens_per_s'), '.1f')} tokens/s, perplexity {fmt(c.get('perplexity'), '.2f')}"

    # ---- the pipeline hook ----------------------------------------------------------------
    def measure(self, model, art: Artifact, *, bench: BenchConfig, ctx: RunContext, stage: str) -> dict[str, Any]:
        threads = bench.effective_threads
        runner = lm_runner(art, threads, model.info.get("hf_config"))
        t0 = time.monotonic()
        m: dict[str, Any] = perplexity(runner, model.data.eval.inputs, ctx=ctx, stage=f"{stage} / perplexity")
        m["eval_time_s"] = time.monotonic() - t0
        prompt = self.bench_prompt(model)
        with ctx.timed():
            m.update(self._latency(runner, prompt, bench, ctx, f"{stage} / latency"))
        m["peak_mem_bytes"] = self._memory(art, runner, prompt, threads)
        m["size_bytes"] = art.size_bytes()
        m["params"] = art.param_count()
        ctx.begin(f"{stage} / samples", total=len(self.prompts))
        m["samples"] = []
        for p in self.prompts:
            m["samples"].append({"prompt": p, "completion": self.complete(runner, p, self.spec.sample_tokens)})
            ctx.step()
        m["threads"] = threads
        m["lm_spec"] = self.spec.to_dict()
        return m

    def bench_prompt(self, model) -> np.ndarray:
        """``prompt_len`` real corpus tokens (the eval documents, concatenated)."""
        ids = model.data.eval.inputs["input_ids"][model.data.eval.inputs["attention_mask"].astype(bool)]
        reps = -(-self.spec.prompt_len // len(ids))
        return np.tile(ids, reps)[: self.spec.prompt_len].astype(np.int64)

    def _latency(
        self, runner: LMRunner, prompt: np.ndarray, bench: BenchConfig, ctx: RunContext, stage: str
    ) -> dict[str, Any]:
        n_prefill = max(3, min(bench.runs, 20))
        rounds = max(1, -(-bench.runs // self.spec.decode_tokens))
        ctx.begin(stage, total=n_prefill + rounds + 1)
        greedy_decode(runner, prompt, min(4, self.spec.decode_tokens))  # warm-up: allocator, kernel choice
        for _ in range(min(bench.warmup, 3)):
            runner.prefill(prompt)
        ctx.step()
        prefill = []
        for _ in range(n_prefill):
            t0 = time.perf_counter()
            runner.prefill(prompt)
            prefill.append((time.perf_counter() - t0) * 1e3)
            ctx.step()
        steps: list[float] = []
        for _ in range(rounds):
            _, times = greedy_decode(runner, prompt, self.spec.decode_tokens, timed=True)
            steps.extend(times)
            ctx.step()
        mean = float(np.mean(steps))
        return {
            "prefill_ms": float(np.median(prefill)),
            "prefill_samples_ms": prefill,
            "prompt_len": len(prompt),
            "p50_ms": float(np.median(steps)),
            "p90_ms": float(np.percentile(steps, 90)),
            "p99_ms": float(np.percentile(steps, 99)),
            "mean_ms": mean,
            "cv": float(np.std(steps) / max(mean, 1e-12)),
            "samples_ms": steps,
            "tokens_per_s": 1000.0 / mean,
            "latency_metric": "decode ms per token (KV cache, batch 1)",
        }

    def _memory(self, art: Artifact, runner: LMRunner, prompt: np.ndarray, threads: int) -> int | None:
        if art.kind == "torch":
            held = sum(t.numel() * t.element_size() for t in art.module.state_dict().values() if hasattr(t, "numel"))
            return held + measure_peak_rss(lambda: greedy_decode(runner, prompt, 4))
        assert isinstance(runner, _OrtLM)
        return onnx_inference_memory(art.path, runner.feed_for(prompt), threads)

    def encode_prompt(self, prompt: str) -> np.ndarray:
        """Token ids of a user prompt, in the model's chat format when it has one."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):  # newer transformers return a BatchEncoding
                ids = ids["input_ids"]
        else:
            ids = tok(prompt)["input_ids"]
        return np.asarray(ids, dtype=np.int64)

    def complete(self, runner: LMRunner, prompt: str, max_new_tokens: int) -> str:
        ids = self.encode_prompt(prompt)
        self.check_prompt_length(
            len(ids) + max_new_tokens, f"prompt ({len(ids)} tokens) plus {max_new_tokens} new tokens"
        )
        new, _ = greedy_decode(runner, ids, max_new_tokens, eos=self.eos_ids)
        return self.tokenizer.decode(new, skip_special_tokens=True).strip()


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


def generate(
    model, prompt: str, *, artifact: Artifact | None = None, max_new_tokens: int = 32, threads: int | None = None
) -> str:
    """Greedy completion of ``prompt`` by a loaded causal LM (or one of its candidates' artifacts).

    >>> generate(load_model("smollm2"), "The capital of France is", max_new_tokens=8)   # doctest: +SKIP
    """
    task = model.task
    if not isinstance(task, CausalLM):
        raise NotACausalLMError(
            f"generate needs a model loaded with the causal-LM task. {model.name!r} has task {task.name!r}."
        )
    check_range("generate", "max_new_tokens", max_new_tokens, 1, 100_000, integer=True)
    runner = lm_runner(artifact or model.baseline, threads, model.info.get("hf_config"))
    return task.complete(runner, prompt, max_new_tokens)


def perplexity_rule(metrics: dict[str, Any], base: dict[str, Any] | None) -> str | None:
    """Degradation rule: perplexity more than MAX_PERPLEXITY_INCREASE above the baseline's."""
    if not base or metrics.get("perplexity") is None or not base.get("perplexity"):
        return None
    ppl, ref = metrics["perplexity"], base["perplexity"]
    if not np.isfinite(ppl) or ppl > ref * (1 + MAX_PERPLEXITY_INCREASE):
        return (
            f"perplexity rose from {ref:.2f} to {ppl:.2f} (+{100 * (ppl / ref - 1):.0f} %; "
            f"limit +{100 * MAX_PERPLEXITY_INCREASE:.0f} %)"
        )
    return None
