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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from ..core.artifact import Artifact
from ..core.config import check_range
from ..core.context import RunContext
from ..core.errors import DataError, WorkbenchError
from ..measure.benchmark import BenchConfig, measure_peak_rss, onnx_inference_memory, recorded_rounds
from ..measure.noise import TimingWatch, settle, settle_seconds
from ..tasks.base import Task, fmt, fmt_mb, fmt_ms, noise_note, speedup_cell, timing_cell
from .corpus import PROMPTS
from .runners import LMRunner, NotACausalLMError, OrtLM, greedy_decode, lm_runner, perplexity

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
                    "speedup [95% CI]": speedup_cell(m),
                    "prefill ms": fmt(m.get("prefill_ms"), ".1f"),
                    "ppl [95% CI]": "-"
                    if ppl is None
                    else (f"{ppl:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{ppl:.2f}"),
                    "ppl +%": fmt(rise, "+.1f", 100),
                    "size MB": fmt(m.get("size_bytes"), ".1f", 1e-6),
                    "mem MB": fmt(m.get("peak_mem_bytes"), ".1f", 1e-6),
                    "timing": timing_cell(m),
                    "note": (c.error or noise_note(m))[:60],
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
    def measure(
        self, model, art: Artifact, *, bench: BenchConfig, ctx: RunContext, stage: str, base: dict | None = None
    ) -> dict[str, Any]:
        """``base``: the baseline's metrics; when given, the baseline's decode is re-timed in the rounds between
        this candidate's (``compared_with``), so the speed-up is taken under the same conditions."""
        threads = bench.effective_threads
        runner = lm_runner(art, threads, model.info.get("hf_config"))
        t0 = time.monotonic()
        m: dict[str, Any] = perplexity(runner, model.data.eval.inputs, ctx=ctx, stage=f"{stage} / perplexity")
        m["eval_time_s"] = time.monotonic() - t0
        prompt = self.bench_prompt(model)
        against = None
        if base and base.get("p50_ms") and art is not model.baseline:
            against = lm_runner(model.baseline, threads, model.info.get("hf_config"))
        wait = settle_seconds() if bench.settle_s is None else bench.settle_s
        waited = settle(threads, wait) if wait > 0 else 0.0
        with ctx.timed(), TimingWatch() as watch:
            lat = self._latency(
                runner, prompt, bench, ctx, f"{stage} / latency", against=against, between_rounds=watch.probe
            )
        paired = lat.pop("baseline_steps_ms", None)
        base_rounds = lat.pop("baseline_round_p50_ms", [])
        ratios = lat.pop("round_speedups", [])
        check = watch.check(threads, lat["samples_ms"], ratios)
        m.update(lat)
        m.update(check.to_metrics())
        m["thread_settings"] = bench.thread_settings()
        if waited >= 0.05:
            m["waited_for_quiet_s"] = round(waited, 2)
        if paired:
            m["compared_with"] = {
                "p50_ms": float(np.median(paired)),
                "recorded_p50_ms": base.get("p50_ms") if base else None,
                "how": f"decode rounds interleaved with the candidate's: {len(ratios)} rounds",
                "round_p50_ms": recorded_rounds(base_rounds),
            }
            m["speedup_rounds"] = ratios
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
        self,
        runner: LMRunner,
        prompt: np.ndarray,
        bench: BenchConfig,
        ctx: RunContext,
        stage: str,
        against: LMRunner | None = None,
        between_rounds: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        n_prefill = max(3, min(bench.runs, 20))
        rounds = max(1, -(-bench.runs // self.spec.decode_tokens))
        if against is not None:
            rounds = max(rounds, 3)  # enough rounds for their ratios to show a moving machine
        ctx.begin(stage, total=n_prefill + rounds + 1)
        greedy_decode(runner, prompt, min(4, self.spec.decode_tokens))  # warm-up: allocator, kernel choice
        if against is not None:
            greedy_decode(against, prompt, min(4, self.spec.decode_tokens))
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
        base_steps: list[float] = []
        base_rounds: list[float] = []  # the baseline's median decode step in each round
        ratios: list[float] = []
        for _ in range(rounds):
            if between_rounds is not None:
                between_rounds()
            _, times = greedy_decode(runner, prompt, self.spec.decode_tokens, timed=True)
            steps.extend(times)
            if against is not None:  # the baseline's decode in the same round: same machine state
                _, base_times = greedy_decode(against, prompt, self.spec.decode_tokens, timed=True)
                base_steps.extend(base_times)
                base_rounds.append(float(np.median(base_times)))
                ratios.append(base_rounds[-1] / max(float(np.median(times)), 1e-12))
            ctx.step()
        mean = float(np.mean(steps))
        paired = (
            {"baseline_steps_ms": base_steps, "baseline_round_p50_ms": base_rounds, "round_speedups": ratios}
            if against is not None
            else {}
        )
        return {
            **paired,
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
        assert isinstance(runner, OrtLM)
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
