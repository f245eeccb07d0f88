"""A device budget and the verdict on candidates against it.

>>> b = Budget(max_latency_ms=5, max_size_mb=25, max_accuracy_drop=0.005)
>>> b.describe()
'p50 <= 5 ms, size <= 25 MB, accuracy drop <= 0.5 points'

A causal LM is judged on what a chat user feels: decode speed and perplexity against FP32.

>>> Budget(min_tokens_per_s=20, max_perplexity_increase=0.05).describe()
'tokens/s >= 20, perplexity increase <= 5 %'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import check_range
from ..store.candidate import Candidate
from . import higher_is_better, pareto_front, quality, tasks_of

__all__ = ["Budget", "Violation", "violations", "best_within", "pareto_front", "timing_warning"]


@dataclass(frozen=True)
class Budget:
    """Limits a candidate must meet. None = no limit. Accuracy drop is a fraction (0.005 = 0.5 points).

    For causal LMs ``max_latency_ms`` limits the per-token decode p50; ``min_tokens_per_s`` the decode speed
    and ``max_perplexity_increase`` the perplexity rise over the FP32 baseline, a fraction (0.05 = +5 %).
    """

    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    max_accuracy_drop: float | None = None
    min_tokens_per_s: float | None = None
    max_perplexity_increase: float | None = None

    def __post_init__(self) -> None:
        if self.max_latency_ms is not None:
            check_range("Budget", "max_latency_ms", self.max_latency_ms, 0, None, lo_open=True)
        if self.max_size_mb is not None:
            check_range("Budget", "max_size_mb", self.max_size_mb, 0, None, lo_open=True)
        if self.max_accuracy_drop is not None:
            check_range("Budget", "max_accuracy_drop", self.max_accuracy_drop, 0, 1)
        if self.min_tokens_per_s is not None:
            check_range("Budget", "min_tokens_per_s", self.min_tokens_per_s, 0, None, lo_open=True)
        if self.max_perplexity_increase is not None:
            check_range("Budget", "max_perplexity_increase", self.max_perplexity_increase, 0, None)

    def describe(self) -> str:
        parts = []
        if self.max_latency_ms is not None:
            parts.append(f"p50 <= {self.max_latency_ms:g} ms")
        if self.max_size_mb is not None:
            parts.append(f"size <= {self.max_size_mb:g} MB")
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {100 * self.max_accuracy_drop:g} points")
        if self.min_tokens_per_s is not None:
            parts.append(f"tokens/s >= {self.min_tokens_per_s:g}")
        if self.max_perplexity_increase is not None:
            parts.append(f"perplexity increase <= {100 * self.max_perplexity_increase:g} %")
        return ", ".join(parts) or "no limits"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "max_latency_ms": self.max_latency_ms,
            "max_size_mb": self.max_size_mb,
            "max_accuracy_drop": self.max_accuracy_drop,
        }
        # the LM limits only when set: search study names hash this dict, and must not change for old budgets
        for k in ("min_tokens_per_s", "max_perplexity_increase"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out


#: constraints that are minimums: a candidate breaks them by falling short
_MINIMUMS = frozenset({"tokens_per_s"})
_UNITS = {
    "latency": (" ms", 1),
    "size": (" MB", 1),
    "accuracy_drop": (" points", 100),
    "tokens_per_s": (" tokens/s", 1),
    "perplexity_increase": (" %", 100),
}


@dataclass(frozen=True)
class Violation:
    #: "latency" | "size" | "accuracy_drop" | "tokens_per_s" | "perplexity_increase" | "status"
    constraint: str
    limit: float | None
    value: float | None

    @property
    def excess(self) -> float | None:
        """How far past the limit, always > 0 for a broken one (a shortfall for minimums such as tokens/s)."""
        if self.limit is None or self.value is None:
            return None
        return self.limit - self.value if self.constraint in _MINIMUMS else self.value - self.limit

    def amounts(self) -> tuple[str, str, str]:
        """(limit, measured value, excess) as text with units, e.g. ``("0.3 MB", "0.63 MB", "0.33 MB")``;
        dashes for a candidate that was not measured."""
        if self.constraint == "status" or self.limit is None or self.value is None:
            return ("-", "-", "-")
        unit, scale = _UNITS[self.constraint]
        return tuple(_num(scale * v) + unit for v in (self.limit, self.value, self.excess))  # type: ignore[return-value]

    def __str__(self) -> str:
        if self.constraint == "status":
            return "not measured (failed or cancelled)"
        limit, value, excess = self.amounts()
        verb = "is below" if self.constraint in _MINIMUMS else "exceeds"
        return f"{self.constraint} {value} {verb} {limit} by {excess}"


def _num(v: float) -> str:
    """3 significant digits, without an exponent for large values (2960 tokens/s, not 2.96e+03)."""
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def violations(c: Candidate, budget: Budget) -> list[Violation]:
    """Which constraints ``c`` breaks, and by how much (empty = fits)."""
    if not c.ok:
        return [Violation("status", None, None)]
    out = []
    p50, size, drop = c.get("p50_ms"), c.get("size_bytes"), c.get("accuracy_drop", 0.0)
    if budget.max_latency_ms is not None and p50 is not None and p50 > budget.max_latency_ms:
        out.append(Violation("latency", budget.max_latency_ms, p50))
    if budget.max_size_mb is not None and size is not None and size / 1e6 > budget.max_size_mb:
        out.append(Violation("size", budget.max_size_mb, size / 1e6))
    if budget.max_accuracy_drop is not None and drop is not None and drop > budget.max_accuracy_drop:
        out.append(Violation("accuracy_drop", budget.max_accuracy_drop, drop))
    tps, rise = c.get("tokens_per_s"), c.get("perplexity_increase")
    if rise is None and c.get("perplexity") is not None and not c.recipe.get("steps"):
        rise = 0.0  # the FP32 baseline is the reference itself
    if budget.min_tokens_per_s is not None and tps is not None and tps < budget.min_tokens_per_s:
        out.append(Violation("tokens_per_s", budget.min_tokens_per_s, tps))
    if budget.max_perplexity_increase is not None and rise is not None and rise > budget.max_perplexity_increase:
        out.append(Violation("perplexity_increase", budget.max_perplexity_increase, rise))
    return out


def best_within(cands: list[Candidate], budget: Budget) -> Candidate | None:
    """The best-quality candidate (its task's quality: accuracy, fidelity, perplexity...) that fits; ties go
    to the faster one."""
    fits = [c for c in cands if c.status != "intermediate" and not violations(c, budget)]
    if not fits:
        return None
    task = tasks_of(fits)
    key = task.quality_metric([c.metrics for c in fits])
    speed = task.speed_metric

    def rank(c: Candidate) -> tuple[float, float]:
        q = quality(c, key)
        v = c.get(speed)
        faster = -float("inf") if v is None else (v if higher_is_better(speed) else -v)
        return (round(q, 6) if q is not None else -float("inf"), faster)

    return max(fits, key=rank)


def timing_warning(c: Candidate | None) -> str | None:
    """The warning that goes with a "best" or a budget verdict resting on a noisy latency (None when it is trusted)."""
    if c is None or not c.get("noisy"):
        return None
    return (
        f"the latency of {c.recipe_name} ({c.id}) was measured on a busy machine ({c.get('noise') or 'noisy'}); "
        f"re-time it before relying on it: workbench remeasure {c.id}"
    )
