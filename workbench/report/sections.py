"""What the report notebook shows, section by section, built from candidates and the run store.

The template (``templates/report.ipynb``) holds no logic: each of its cells calls one of these functions and
displays what comes back (a Markdown string, a pandas table, an Altair chart). Every function reads the
metric names from the candidates, so the same report renders a classifier (accuracy, p50 latency) and a
causal LM (perplexity with its CI, decode tokens/s, prefill time, and the generation samples stored with
each candidate).

>>> cands = RunStore().candidates("digits-cnn", include_intermediate=False)   # doctest: +SKIP
>>> candidates_table(cands)                                                 # doctest: +SKIP
>>> print(verdict_sentence(cands, Budget(max_latency_ms=5)))                  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..lm.task import CausalLM
from ..measure.benchmark import BenchConfig
from ..measure.delegation import DelegationReport
from ..measure.noise import machine_speed_note
from ..store.candidate import Candidate
from ..store.runstore import RunStore
from ..tasks import higher_is_better, pareto_front, tasks_of
from ..tasks.base import speedup_cell
from ..tasks.budget import Budget, best_within, timing_warning, violations
from . import charts

if TYPE_CHECKING:  # pandas and altair load lazily: importing workbench stays light
    import altair as alt
    import pandas as pd

__all__ = [
    "phrases",
    "is_lm",
    "quality_metric",
    "speed_metric",
    "model_summary",
    "candidates_table",
    "timing_note",
    "generation_samples",
    "recipe_lines",
    "best_ids",
    "tradeoff",
    "chart_caption",
    "verdict_sentence",
    "verdict_table",
    "environment_frame",
]

_FORMATS = {
    "p50_ms": "{:.2f}",
    "p50_usual_ms": "{:.2f}",
    "p90_ms": "{:.2f}",
    "speedup": "{:.2f}x",
    "size_mb": "{:.2f}",
    "accuracy": "{:.2%}",
    "accuracy_drop": "{:+.2%}",
    "fidelity": "{:.4f}",
}
# how each metric reads in a sentence; a metric not listed is printed as "name value"
_PHRASES = {
    "accuracy": "accuracy {:.2%}",
    "fidelity": "fidelity {:.4f}",
    "perplexity": "perplexity {:.2f}",
    "p50_ms": "p50 {:.2f} ms",
    "tokens_per_s": "{:.1f} tokens/s",
    "speedup": "{:.2f}x the FP32 speed",
    "size_mb": "{:.2f} MB",
}
_WORDS = {"accuracy": "most accurate", "fidelity": "most faithful", "perplexity": "lowest-perplexity"}


def _final(cands: Sequence[Candidate]) -> list[Candidate]:
    return [c for c in cands if c.status != "intermediate"]


def is_lm(cands: Sequence[Candidate]) -> bool:
    """True when the candidates are a causal LM's (their recorded task)."""
    return tasks_of(list(cands)).name == CausalLM.name


def quality_metric(cands: Sequence[Candidate]) -> str:
    """The quality axis of the candidates' task: accuracy, else fidelity; perplexity for a causal LM."""
    return charts.quality_metric(cands)


def speed_metric(cands: Sequence[Candidate]) -> str:
    """The speed axis of the candidates' task: p50 latency of one input, or decode tokens/s for a causal LM."""
    return charts.speed_metric(cands)


def model_summary(loaded: Any, bench: BenchConfig, budget: Budget, seed: int) -> str:
    """One Markdown paragraph: the model, what it is scored on, how latency is measured, the budget."""
    spec = getattr(loaded.task, "spec", None)
    head = f"**Model** `{loaded.name}`: {loaded.source}."
    timing = f"on {bench.effective_threads} thread(s), {bench.warmup} warm-up + {bench.runs} timed runs"
    if loaded.task.name == CausalLM.name and spec is not None:
        corpus = loaded.info.get("corpus") or "held-out text"
        return (
            f"{head} A causal language model: perplexity on **{len(loaded.data.eval)}** held-out documents of "
            f"{spec.seq_len} tokens ({corpus}; seed {seed}); prefill of a {spec.prompt_len}-token prompt and "
            f"decode speed with the KV cache at batch 1, {timing}; greedy answers of {spec.sample_tokens} tokens "
            f"to fixed prompts. Budget: {replace(budget, max_accuracy_drop=None).describe()} (a language model "
            "has no accuracy: its quality limit is the perplexity increase)."
        )
    return (
        f"{head} Scored on **{len(loaded.data.eval)}** eval examples (seed {seed}); latency at batch 1 {timing}. "
        f"Budget: {budget.describe()}."
    )


def data_summary(loaded: Any) -> str:
    """The data the candidates are scored on, in Markdown: source, format, size, labels, content hash, notes."""
    d = loaded.info.get("dataset")
    if not d:
        return (
            f"**Data**: the bundled data of `{loaded.name}` ({len(loaded.data.eval)} eval examples; spec "
            f"`{json.dumps(loaded.data.spec, sort_keys=True, default=str)}`)."
        )
    rows = d.get("rows")
    total = d.get("rows_in_source")
    parts = [f"**Data** `{d.get('source')}`"]
    if d.get("format") or d.get("kind"):
        parts.append(f"({d.get('format') or ''} {d.get('kind') or ''})".replace("( ", "(").replace(" )", ")"))
    text = " ".join(parts) + f": {rows} rows" + (f" sampled from {total}" if total and total != rows else "")
    text += f", {len(loaded.data.eval)} scored"
    if loaded.data.train is not None:
        text += f", {len(loaded.data.train)} for training / calibration"
    text += "."
    if d.get("columns"):
        text += " Columns: " + ", ".join(f"{role} = `{col}`" for role, col in d["columns"].items()) + "."
    if d.get("labels"):
        text += " Label counts: " + ", ".join(f"{k}: {v}" for k, v in d["labels"].items()) + "."
    if d.get("sha256"):
        text += f" Content sha256 `{d['sha256']}`."
    notes = d.get("notes") or []
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return text


def candidates_table(cands: Sequence[Candidate]):
    """The comparison table as a pandas Styler: the columns ``workbench optimize`` prints for a causal LM
    (tokens/s, prefill ms, perplexity [95 % CI], its rise over FP32, size, memory), else latency, size,
    accuracy, drop and fidelity."""
    import pandas as pd

    cands = _final(cands)
    if is_lm(cands):
        frame = pd.DataFrame(tasks_of(cands).table_rows(cands))
        frame = frame[["recipe", "id", *[c for c in frame.columns if c not in ("recipe", "id")]]]
        return frame.style.hide(axis="index")
    metrics = ["p50_ms", "p50_usual_ms", "p90_ms", "speedup", "size_mb", "accuracy", "accuracy_drop", "fidelity"]
    frame = charts.candidates_frame(cands, metrics).dropna(axis=1, how="all")
    return (
        frame.style.format({k: v for k, v in _FORMATS.items() if k in frame}, na_rep="-")
        .hide(axis="index")
        .relabel_index([charts.METRIC_TITLES.get(c, c) for c in frame.columns], axis="columns")
    )


def timing_note(cands: Sequence[Candidate]) -> str:
    """Under the table: how the latencies were timed, how far the machine's own speed moved meanwhile (read from
    the candidates' stored noise facts, so a re-rendered report says what the timings saw), and which were flagged
    noisy."""
    timed = [c for c in _final(cands) if c.ok]
    noisy = [c for c in timed if c.get("noisy")]
    speed = machine_speed_note([c.metrics for c in timed])
    flagged = (
        f"{len(noisy)} of {len(timed)} latencies were flagged noisy ({', '.join(c.recipe_name for c in noisy)}; "
        f"the reasons are under *Recipes*); `workbench remeasure {' '.join(c.id for c in noisy)}` re-times them."
        if noisy
        else f"None of the {len(timed)} latencies was flagged noisy."
    )
    speed = speed or "This machine's speed was not read during these timings."
    known = [c for c in timed if c.get("speedup_ci")]
    intervals = (
        " Each speed-up is the median of its rounds' ratios (the candidate and the baseline timed in turn, in short "
        "chunks: BenchConfig.chunk_s, 50 ms by default); with its 95 % confidence interval: "
        + "; ".join(f"{c.recipe_name} {speedup_cell(c.metrics)}" for c in known)
        + "."
        if known
        else ""
    )
    usual = [c for c in timed if c.get("p50_usual_ms")]
    refs = sorted({(c.get("usual_speed") or {}).get("timings") or 0 for c in usual})
    at_usual = (
        f" *p50 at usual speed* is the baseline's usual p50 (the mean of the middle half of its p50s in its most recent"
        f" timings here, {refs[0] if len(refs) == 1 else f'{refs[0]}-{refs[-1]}'} of them, each timing weighing the"
        " same, the quiet ones when there are enough) divided by the candidate's paired speed-up: the machine's"
        " own speed moves between timings, the paired speed-up much less, so this column compares candidates timed"
        " at different moments; the p50 column is what each timing measured."
        if usual
        else ""
    )
    return f"**Timing.** {speed}{intervals}{at_usual} {flagged}"


def generation_samples(cands: Sequence[Candidate]) -> list[Any]:
    """A causal LM's greedy answers to the fixed prompts, each beside its candidate's tokens/s and perplexity
    (a Styler in a list, for ``display(*...)``); an empty list for other models."""
    import pandas as pd

    rows = []
    measured = [c for c in _final(cands) if c.ok and c.get("samples")]
    for c in measured:
        for s in c.get("samples"):
            rows.append(
                {
                    "prompt": s["prompt"],
                    "candidate": f"{c.recipe_name} ({c.id})",
                    "tokens/s": c.get("tokens_per_s"),
                    "perplexity": c.get("perplexity"),
                    "completion": s["completion"],
                }
            )
    if not rows:
        return []
    frame = pd.DataFrame(rows).sort_values("prompt", kind="stable")
    caption = (
        "Generation samples: greedy answers to fixed prompts, stored with each candidate, "
        "for a person to judge beside the numbers"
    )
    return [
        frame.style.format({"tokens/s": "{:.1f}", "perplexity": "{:.2f}"}, na_rep="-")
        .hide(axis="index")
        .set_caption(caption)
    ]


def recipe_lines(cands: Sequence[Candidate], started: datetime.datetime) -> str:
    """Markdown: each candidate's recipe step by step, and whether it was reused or measured in this run."""
    lines = []
    for c in cands:
        steps = c.recipe.get("steps", [])
        chain = " → ".join(
            s["kind"] + "(" + ", ".join(f"{k}={v!r}" for k, v in s.items() if k not in ("kind", "version")) + ")"
            for s in steps
        )
        when = (
            "reused, measured "
            + datetime.datetime.fromtimestamp(c.created_at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            if c.created_at < started.timestamp()
            else "measured in this run"
        )
        desc = c.recipe.get("description") or ""
        deleg = c.notes.get("delegation")  # ExecuTorch / LiteRT: what ran inside the delegate, what fell back
        lines.append(
            f"- **{c.recipe_name}** (`{c.id}`, {c.runtime}, {c.status}; {when}): {chain or 'the unmodified FP32 model'}"
            + (f" — {desc}" if desc else "")
            + (f"  \n  Delegation: {DelegationReport.from_dict(deleg).summary()}" if isinstance(deleg, dict) else "")
            + (f"  \n  Timing: noisy ({c.get('noise')})" if c.ok and c.get("noisy") else "")
            + (f"  \n  *{c.error}*" if c.error else "")
        )
    return "\n".join(lines)


def best_ids(cands: Sequence[Candidate], budget: Budget) -> list[str]:
    """The id of the best candidate within the budget (to highlight), or [] when none fits."""
    best = best_within(list(cands), budget)
    return [best.id] if best is not None else []


def tradeoff(
    cands: Sequence[Candidate], budget: Budget | None, selected: Sequence[str] = (), title: str | None = None
) -> alt.LayerChart:
    """The trade-off scatter on the model's own axes: perplexity vs tokens/s for an LM, else quality vs p50."""
    return charts.tradeoff_chart(
        list(cands), budget, x=speed_metric(cands), y=quality_metric(cands), selected=selected, title=title
    )


def _direction(metric: str) -> str:
    return "higher is better" if higher_is_better(metric) else "lower is better"


def chart_caption(cands: Sequence[Candidate]) -> str:
    """One line naming the chart's axes (images carry no text a reader can search) and the Pareto front."""
    x, y = speed_metric(cands), quality_metric(cands)
    points = [c for c in cands if c.ok and c.get(x) is not None and c.get(y) is not None]
    front = pareto_front(points, (x, y))
    return (
        f"*Chart: {charts.METRIC_TITLES.get(y, y)} ({_direction(y)}) against {charts.METRIC_TITLES.get(x, x)} "
        f"({_direction(x)}), {len(points)} candidates; on the Pareto front: "
        f"{', '.join(c.recipe_name for c in sorted(front, key=lambda c: c.get(x))) or '-'}.*"
    )


def _where(budget: Budget, lm: bool) -> str:
    """The budget in words, for the verdict sentence ("within 5 ms and 25 MB, losing at most 1 point...")."""
    if lm:
        inc = budget.max_perplexity_increase
        limits = [
            f"at least {budget.min_tokens_per_s:g} tokens/s" if budget.min_tokens_per_s is not None else "",
            f"at most {budget.max_latency_ms:g} ms per token" if budget.max_latency_ms is not None else "",
            f"at most {budget.max_size_mb:g} MB" if budget.max_size_mb is not None else "",
            f"a perplexity at most {100 * inc:g} % above FP32" if inc is not None else "",
        ]
        return f"within the budget ({', '.join(x for x in limits if x)})" if any(limits) else "with no limit"
    limits = [
        f"{budget.max_latency_ms:g} ms" if budget.max_latency_ms is not None else "",
        f"{budget.max_size_mb:g} MB" if budget.max_size_mb is not None else "",
    ]
    drop = budget.max_accuracy_drop
    return (
        "within "
        + (" and ".join(x for x in limits if x) or "no latency or size limit")
        + (
            f", losing at most {100 * drop:g} point{'' if 100 * drop == 1 else 's'} of accuracy"
            if drop is not None
            else ""
        )
    )


def phrases(c: Candidate, metrics: Sequence[str]) -> str:
    """A candidate's numbers as words ("accuracy 97.30%, p50 6.86 ms, 22.82 MB"), skipping unmeasured ones."""
    size = c.get("size_bytes")
    values = {m: (size / 1e6 if size else None) if m == "size_mb" else c.get(m) for m in metrics}
    return ", ".join(_PHRASES.get(m, m + " {:.4g}").format(v) for m, v in values.items() if v is not None)


def verdict_sentence(cands: Sequence[Candidate], budget: Budget) -> str:
    """Markdown: the best candidate within the budget with its numbers, or that none fits and the closest."""
    quality, speed = quality_metric(cands), speed_metric(cands)
    word = _WORDS.get(quality, f"best {quality}")
    where = _where(budget, is_lm(cands))
    best = best_within(list(cands), budget)
    if best is not None:
        warn = timing_warning(best)
        return (
            f"The {word} candidate {where}: **{best.recipe_name}** (`{best.id}`): "
            + phrases(best, (quality, speed, "speedup", "size_mb"))
            + "."
            + (f" **Caution:** {warn}." if warn else "")
        )
    measured = [c for c in cands if c.ok]
    # closest = the smallest total relative excess over the limits it breaks
    excess = [
        (sum(v.excess / v.limit for v in violations(c, budget) if v.excess is not None), i)
        for i, c in enumerate(measured)
    ]
    closest = measured[min(excess)[1]] if excess else None
    if closest is None:
        return f"**No candidate fits** {where}. Nothing was measured."
    return (
        f"**No candidate fits** {where}. The closest is **{closest.recipe_name}** (`{closest.id}`): "
        + "; ".join(str(v) for v in violations(closest, budget))
        + "."
    )


def verdict_table(cands: Sequence[Candidate], budget: Budget):
    """Each candidate: fits the budget or not, and why not (a Styler)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "recipe": [c.recipe_name for c in cands],
            "id": [c.id for c in cands],
            "fits the budget": ["yes" if not violations(c, budget) else "no" for c in cands],
            "why not": ["; ".join(str(v) for v in violations(c, budget)) for c in cands],
            "timing": [("noisy: " + c.get("noise", "")) if c.get("noisy") else "ok" for c in cands],
        }
    ).style.hide(axis="index")


def environment_frame(
    loaded: Any, cands: Sequence[Candidate], bench: BenchConfig, seed: int, store: RunStore, started: datetime.datetime
) -> pd.DataFrame:
    """What the numbers depend on: CPU, ISA, threads, library versions, model fingerprint, candidate ids."""
    import pandas as pd

    from ..core.env import fingerprint
    from ..recipes.advice import cpu_summary

    fp = fingerprint(bench.effective_threads)
    other = sorted({c.env.get("cpu", "?") for c in cands if c.env and c.env.get("cpu") != fp["cpu"]})
    rows = {
        "CPU": fp["cpu"],
        "machine / cores": f"{fp['machine']}, {fp['cores']} cores",
        "ISA": " ".join(fp["isa"]) or "-",
        "what this CPU means": cpu_summary(fp["isa"], fp["machine"]),
        "threads": fp["threads"],
        "thread settings": ", ".join(f"{k} {v}" for k, v in bench.thread_settings().items()),
        "noisy latencies": ", ".join(f"{c.recipe_name}={c.id}" for c in cands if c.ok and c.get("noisy")) or "none",
        "seed": seed,
        "Python": fp["python"],
        "OS": fp["os"],
        **{f"{k} version": v for k, v in fp["libraries"].items()},
        "model fingerprint": loaded.fingerprint,
        "eval examples": len(loaded.data.eval),
        "run store": str(store.path),
        "candidate ids": ", ".join(f"{c.recipe_name}={c.id}" for c in cands),
        "also measured on": ", ".join(other) or "-",
        "report generated": started.strftime("%Y-%m-%d %H:%M UTC"),
    }
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows))
