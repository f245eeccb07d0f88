"""A device budget and the verdict on candidates against it.

>>> b = Budget(max_latency_ms=5, max_size_mb=25, max_accuracy_drop=0.005)
>>> b.describe()
'p50 <= 5 ms, size <= 25 MB, accuracy drop <= 0.5 points'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .candidate import Candidate
from .config import check_range

__all__ = ["Budget", "Violation", "violations", "best_within", "pareto_front"]


@dataclass(frozen=True)
class Budget:
    """Limits a candidate must meet. None = no limit. Accuracy drop is a fraction (0.005 = 0.5 points)."""

    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    max_accuracy_drop: float | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.max_latency_ms is not None:
            check_range("Budget", "max_latency_ms", self.max_latency_ms, 0, None, lo_open=True)
        if self.max_size_mb is not None:
            check_range("Budget", "max_size_mb", self.max_size_mb, 0, None, lo_open=True)
        if self.max_accuracy_drop is not None:
            check_range("Budget", "max_accuracy_drop", self.max_accuracy_drop, 0, 1)
        if self.threads is not None:
            check_range("Budget", "threads", self.threads, 1, 1024, integer=True)

    def describe(self) -> str:
        parts = []
        if self.max_latency_ms is not None:
            parts.append(f"p50 <= {self.max_latency_ms:g} ms")
        if self.max_size_mb is not None:
            parts.append(f"size <= {self.max_size_mb:g} MB")
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {100 * self.max_accuracy_drop:g} points")
        return ", ".join(parts) or "no limits"

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_latency_ms": self.max_latency_ms,
            "max_size_mb": self.max_size_mb,
            "max_accuracy_drop": self.max_accuracy_drop,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class Violation:
    constraint: str  # "latency" | "size" | "accuracy_drop" | "status"
    limit: float | None
    value: float | None

    @property
    def excess(self) -> float | None:
        if self.limit is None or self.value is None:
            return None
        return self.value - self.limit

    def __str__(self) -> str:
        if self.constraint == "status":
            return "not measured (failed or cancelled)"
        unit = {"latency": " ms", "size": " MB", "accuracy_drop": " points"}[self.constraint]
        scale = 100 if self.constraint == "accuracy_drop" else 1
        return (
            f"{self.constraint} {scale * self.value:.3g}{unit} exceeds {scale * self.limit:.3g}{unit} "
            f"by {scale * self.excess:.3g}{unit}"
        )


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
    return out


def _quality(c: Candidate) -> float:
    acc = c.get("accuracy")
    return acc if acc is not None else (c.get("fidelity") or 0.0)


def best_within(cands: list[Candidate], budget: Budget) -> Candidate | None:
    """The most accurate candidate that fits (ties: the faster one)."""
    fits = [c for c in cands if c.status != "intermediate" and not violations(c, budget)]
    if not fits:
        return None
    return max(fits, key=lambda c: (round(_quality(c), 6), -(c.get("p50_ms") or float("inf"))))


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no other candidate beats on all of accuracy (higher), p50 and size (lower)."""
    pts = [c for c in cands if c.ok and c.get("p50_ms") is not None]

    def dominates(a: Candidate, b: Candidate) -> bool:
        qa, qb = _quality(a), _quality(b)
        la, lb = a.get("p50_ms"), b.get("p50_ms")
        sa, sb = a.get("size_bytes") or 0, b.get("size_bytes") or 0
        return qa >= qb and la <= lb and sa <= sb and (qa > qb or la < lb or sa < sb)

    return [c for c in pts if not any(dominates(o, c) for o in pts if o is not c)]
