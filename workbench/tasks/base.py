"""The task seam: what a model's outputs mean, how a candidate is judged, and how it is shown.

A :class:`Task` declares, for one kind of model:

- the data it needs (:meth:`Task.validate_data`) and how outputs become metrics (:meth:`Task.metrics`,
  or a whole protocol of its own in ``measure`` — causal LMs time decoding instead of batches);
- its quality metrics, in order of preference (the first one a candidate has is *the* quality), and its
  speed metric, each with a direction (:data:`METRICS`); what is compared with FP32 (:meth:`Task.relative`);
- the degradation rule (:meth:`Task.degradation`) and the recipes ``optimize`` runs by default;
- its chart axes and table columns.

Everything else (budget verdicts, Pareto fronts, charts, tables, panels, the report) reads these
declarations through :func:`workbench.tasks.task_of` and never tests a metric's name to learn what kind
of model it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.errors import DataError
from ..measure.benchmark import paired_speedup

__all__ = [
    "Metric",
    "METRICS",
    "Task",
    "higher_is_better",
    "metric_title",
    "fmt",
    "fmt_ms",
    "fmt_mb",
    "fmt_pct",
    "timing_cell",
    "noise_note",
]


@dataclass(frozen=True)
class Metric:
    """One measured quantity: its key in ``Candidate.metrics``, its title, and which way is better."""

    key: str
    title: str
    higher_is_better: bool
    #: the key of its 95 % confidence interval, where one is measured
    ci: str | None = None


#: every metric the workbench measures, with its direction; one table for charts, tables and comparisons
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("p50_ms", "p50 latency (ms)", False),
        # the baseline's usual p50 over this timing's paired speed-up (workbench.measure.benchmark.usual_p50)
        Metric("p50_usual_ms", "p50 at usual speed (ms)", False),
        Metric("p90_ms", "p90 latency (ms)", False),
        Metric("p99_ms", "p99 latency (ms)", False),
        Metric("mean_ms", "mean latency (ms)", False),
        Metric("accuracy", "accuracy", True, ci="accuracy_ci"),
        Metric("fidelity", "fidelity to FP32", True),
        Metric("cosine", "cosine to FP32", True),
        Metric("agreement", "agreement with FP32", True),
        Metric("accuracy_drop", "accuracy drop", False),
        Metric("size_mb", "size (MB)", False),
        Metric("perplexity", "perplexity", False, ci="perplexity_ci"),
        Metric("perplexity_increase", "perplexity increase vs FP32", False),
        Metric("tokens_per_s", "tokens / s", True),
        Metric("prefill_ms", "prefill (ms)", False),
        Metric("speedup", "speed-up vs FP32", True),
    )
}


def higher_is_better(key: str) -> bool:
    """Direction of a metric; unknown metrics (sizes, times) are better when lower."""
    m = METRICS.get(key)
    return bool(m and m.higher_is_better)


def metric_title(key: str) -> str:
    m = METRICS.get(key)
    return m.title if m else key


def fmt(v: Any, spec: str = ".3g", scale: float = 1.0) -> str:
    """A table cell: ``-`` for a missing value."""
    if v is None:
        return "-"
    try:
        return format(v * scale, spec)
    except (TypeError, ValueError):
        return str(v)


def speedup_cell(m: Mapping[str, Any]) -> str:
    """A speed-up with its 95 % confidence interval when it was timed in rounds: ``2.27x [2.20, 2.35]``."""
    if not m.get("speedup"):
        return "-"
    ci = m.get("speedup_ci")
    return f"{m['speedup']:.2f}x [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{m['speedup']:.2f}x"


def _accuracy_cell(m: Mapping[str, Any]) -> str:
    if m.get("accuracy") is None:
        return "-"
    ci = m.get("accuracy_ci")
    return f"{100 * m['accuracy']:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else f"{100 * m['accuracy']:.1f}"


class Task:
    """Base of every task kind. Subclasses set ``name`` and override what differs.

    Data and metrics are instance methods (a task instance may hold a trained head or a tokenizer); how a
    candidate is judged and shown are class methods, so a stored candidate is judged by its task's class
    alone (:func:`workbench.tasks.task_of`), without loading its model.
    """

    name: ClassVar[str] = "task"
    #: quality metrics in order of preference: a candidate's quality is the first one it has
    quality_metrics: ClassVar[tuple[str, ...]] = ("accuracy", "fidelity")
    #: the speed metric charts, fronts and "fastest" use (p50 latency; causal LMs: decode tokens/s)
    speed_metric: ClassVar[str] = "p50_ms"
    #: the recipes ``optimize`` runs when none are named (None: the workbench's default set)
    default_recipes: ClassVar[tuple[str, ...] | None] = None
    #: degradation rule: more than this many points of accuracy lost, or (without labels) a cosine below this
    max_accuracy_drop: ClassVar[float] = 0.05
    min_cosine: ClassVar[float] = 0.90

    # ---- data and metrics ------------------------------------------------------------
    def validate_data(self, data) -> None:
        """Raise DataError if ``data`` (a TaskData) cannot be scored by this task."""
        if data.eval is None or len(data.eval) == 0:
            raise DataError(f"The {self.name} task needs a non-empty eval split.")

    def metrics(self, outputs, labels, reference) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def relative(cls, m: dict[str, Any], base: Mapping[str, Any] | None) -> dict[str, Any]:
        """Add the comparisons with the FP32 baseline's metrics (accuracy drop, speed-up, size ratio)."""
        if not base:
            return m
        if base.get("accuracy") is not None and m.get("accuracy") is not None:
            m["accuracy_drop"] = base["accuracy"] - m["accuracy"]
        if base.get("p50_ms") and m.get("p50_ms"):
            # timed in rounds beside the baseline: the median of the rounds' ratios, with its confidence interval
            m.update(paired_speedup(m.get("speedup_rounds") or (), base["p50_ms"] / m["p50_ms"]))
        if base.get("size_bytes") and m.get("size_bytes") is not None:
            m["size_ratio"] = m["size_bytes"] / base["size_bytes"]
        return m

    @classmethod
    def degradation(cls, metrics: Mapping[str, Any], base: Mapping[str, Any] | None) -> str | None:
        """Why a measured candidate counts as degraded (kept, flagged with the reason), or None."""
        if base and metrics.get("accuracy") is not None and base.get("accuracy") is not None:
            drop = base["accuracy"] - metrics["accuracy"]
            if drop > cls.max_accuracy_drop:
                return f"accuracy dropped {100 * drop:.1f} points (limit {100 * cls.max_accuracy_drop:.0f})"
        # with labels, quality is judged on the task (a distilled student may drift in embedding space and
        # still classify as well); without labels, fidelity to FP32 is the only quality signal there is
        cos = metrics.get("cosine")
        if metrics.get("accuracy") is None and cos is not None and cos < cls.min_cosine:
            return f"cosine to FP32 is {cos:.3f} (limit {cls.min_cosine})"
        return None

    # ---- judging -----------------------------------------------------------------------
    @classmethod
    def quality_metric(cls, metrics_list: Sequence[Mapping[str, Any]] = ()) -> str:
        """The quality metric for these candidates' metrics: the first preferred one any of them has."""
        for key in cls.quality_metrics:
            if any(m.get(key) is not None for m in metrics_list):
                return key
        return cls.quality_metrics[-1]

    @classmethod
    def quality(cls, metrics: Mapping[str, Any], key: str | None = None) -> float | None:
        """The quality as a number where higher is better (a lower-is-better metric is negated)."""
        key = key or next((k for k in cls.quality_metrics if metrics.get(k) is not None), None)
        v = metrics.get(key) if key else None
        if v is None:
            return None
        return float(v) if higher_is_better(key) else -float(v)

    # ---- showing -----------------------------------------------------------------------
    @classmethod
    def chart_axes(cls, metrics_list: Sequence[Mapping[str, Any]] = ()) -> tuple[str, str]:
        """(x, y) of the trade-off chart: speed against quality."""
        return cls.speed_metric, cls.quality_metric(metrics_list)

    @classmethod
    def table_rows(cls, cands: Sequence[Any]) -> list[dict[str, str]]:
        """The candidates as the CLI (``optimize``, ``runs``) and the results panel print them."""
        return [cls.table_row(c) for c in cands]

    @classmethod
    def table_row(cls, c) -> dict[str, str]:
        m = c.metrics
        return {
            "id": c.id,
            "recipe": c.recipe_name,
            "runtime": c.runtime,
            "status": c.status,
            "p50 ms": fmt(m.get("p50_ms"), ".2f"),
            "p50 ms at usual speed": fmt(m.get("p50_usual_ms"), ".2f"),
            "p90 ms": fmt(m.get("p90_ms"), ".2f"),
            "speedup [95% CI]": speedup_cell(m),
            "size MB": fmt(m.get("size_bytes"), ".1f", 1e-6),
            "mem MB": fmt(m.get("peak_mem_bytes"), ".1f", 1e-6),
            "accuracy % [95% CI]": _accuracy_cell(m),
            "drop pts": fmt(m.get("accuracy_drop"), "+.2f", 100),
            "fidelity": fmt(m.get("fidelity"), ".4f"),
            "timing": timing_cell(m),
            "note": (c.error or noise_note(m))[:60],
        }

    @classmethod
    def summary(cls, c) -> str:
        """One short line for pickers: ``int8 · 3f2a [ok] p50 1.2 ms acc 97.3 %``."""
        q = c.get("accuracy")
        q_txt = (
            f"acc {100 * q:.1f} %"
            if q is not None
            else (f"fid {c.get('fidelity'):.3f}" if c.get("fidelity") is not None else "")
        )
        p50 = c.get("p50_ms")
        return f"{c.recipe_name} · {c.id[:4]} [{c.status}]" + (f" p50 {p50:.3g} ms {q_txt}" if p50 is not None else "")

    @classmethod
    def describe(cls, c) -> str:
        """The measured numbers in words, for status lines: ``p50 1.20 ms, 0.62 MB, accuracy 97.3 % (drop 0.2 points)``."""
        parts = [f"p50 {fmt_ms(c.get('p50_ms'))}", fmt_mb(c.get("size_bytes"))]
        if c.get("accuracy") is not None:
            drop = c.get("accuracy_drop")
            parts.append(
                f"accuracy {fmt_pct(c.get('accuracy'))}"
                + (f" (drop {100 * drop:.1f} points)" if drop is not None else "")
            )
        elif c.get("fidelity") is not None:
            parts.append(f"fidelity {c.get('fidelity'):.3f}")
        return ", ".join(parts)

    @classmethod
    def describe_baseline(cls, c) -> str:
        """The FP32 baseline in one line, for the model picker."""
        q = c.get("accuracy")
        return f"p50 {fmt_ms(c.get('p50_ms'))}, " + (
            f"accuracy {fmt_pct(q)}" if q is not None else f"fidelity {c.get('fidelity', 1):.3f}"
        )


def fmt_ms(v: float | None) -> str:
    return "–" if v is None else (f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms")


def fmt_mb(size_bytes: float | None) -> str:
    return "–" if size_bytes is None else f"{size_bytes / 1e6:.3g} MB"


def fmt_pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def timing_cell(m: Mapping[str, Any]) -> str:
    """ "noisy" when the latency was measured on a busy machine, "re-timed" after ``workbench remeasure``."""
    if m.get("p50_ms") is None:
        return "-"
    word = "noisy" if m.get("noisy") else "ok"
    return f"{word}, re-timed" if m.get("retimed") else word


def noise_note(m: Mapping[str, Any]) -> str:
    """Why a latency is noisy, for the note column (empty when it is not)."""
    return f"busy machine: {m['noise']}" if m.get("noisy") and m.get("noise") else ""
