"""What a search found: each trial with its verdict against the budget, the front, and the best candidate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..recipes.registry import Recipe
from ..store.candidate import Candidate
from ..store.runstore import RunStore
from ..tasks import quality
from ..tasks.budget import Budget, Violation, timing_warning, violations

PREFER = ("auto", "accuracy", "latency", "size")


@dataclass
class TrialRecord:
    """One finished trial: the recipe, its candidate, and the budget verdict."""

    number: int
    family: str
    params: dict[str, Any]
    recipe: Recipe
    candidate: Candidate | None
    violations: list[Violation]
    reused: bool = False
    elapsed_s: float = 0.0

    @property
    def fits(self) -> bool:
        return self.candidate is not None and self.candidate.ok and not self.violations

    @property
    def verdict(self) -> str:
        if self.candidate is None or not self.candidate.ok:
            err = (self.candidate.error or "").splitlines()[0] if self.candidate and self.candidate.error else ""
            return f"failed: {err}" if err else "failed"
        return "fits" if not self.violations else "rejected: " + "; ".join(map(str, self.violations))

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "trial": self.number,
            "family": self.family,
            "params": self.params,
            "recipe": self.recipe.name,
            "candidate_id": c.id if c else None,
            "status": c.status if c else None,
            "p50_ms": c.get("p50_ms") if c else None,
            "size_mb": (c.get("size_bytes") or 0) / 1e6 if c else None,
            "accuracy": c.get("accuracy") if c else None,
            "accuracy_drop": c.get("accuracy_drop") if c else None,
            "fidelity": c.get("fidelity") if c else None,
            "fits": self.fits,
            "verdict": self.verdict,
            "violations": [
                {"constraint": v.constraint, "limit": v.limit, "value": v.value, "excess": v.excess}
                for v in self.violations
            ],
            "reused": self.reused,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def trial_quality(c: Candidate) -> float:
    """The candidate's task quality (higher is better), 0 where it has none: an Optuna objective needs a number."""
    q = quality(c)
    return 0.0 if q is None else q


def _closeness(t: TrialRecord) -> float:
    """How far a rejected candidate is from fitting: the sum of relative excesses (0 = fits)."""
    if not t.candidate or not t.candidate.ok:
        return float("inf")
    return sum((v.excess or 0) / max(v.limit or 1e-9, 1e-9) for v in t.violations)


@dataclass
class SearchResult:
    model: str
    budget: Budget
    baseline: Candidate
    trials: list[TrialRecord]
    best: Candidate | None
    front: list[Candidate]
    prefer: str
    study_name: str
    storage: str | None
    space_size: int
    elapsed_s: float = 0.0
    executor: str = "local"
    #: architecture search: every architecture timed untrained, with its fate (dropped, trained, not trained)
    screened: list[dict[str, Any]] = field(default_factory=list)
    #: architecture search: why each student was trained or dropped, in order
    decisions: list[str] = field(default_factory=list)
    #: the device whose latency table judged the budget (None: this host)
    device: str | None = None

    @property
    def candidates(self) -> list[Candidate]:
        seen, out = set(), []
        for c in [self.baseline, *(t.candidate for t in self.trials if t.candidate)]:
            if c.id not in seen:
                seen.add(c.id)
                out.append(c)
        return out

    @property
    def rejected(self) -> list[TrialRecord]:
        return [t for t in self.trials if not t.fits]

    def closest(self, n: int = 3) -> list[TrialRecord]:
        """The rejected candidates nearest to fitting (smallest relative excess over the limits)."""
        measured = [t for t in self.rejected if t.candidate is not None and t.candidate.ok]
        return sorted(measured, key=_closeness)[:n]

    def rows(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.trials]

    def frame(self):
        import pandas as pd

        return pd.DataFrame.from_records(self.rows())

    def explain(self) -> str:
        """A few lines: what was searched, the answer (or that nothing fits, with the closest), the front."""
        n_fit = sum(t.fits for t in self.trials)
        what = "students trained" if self.screened else "recipes"
        lines = [
            f"Searched {len(self.trials)} {what} (space of {self.space_size}) for {self.model} under "
            f"{self.budget.describe()}{f' on {self.device}' if self.device else ''} in {self.elapsed_s:.0f} s: "
            f"{n_fit} fit."
        ]
        lines += self.decisions[:-1] if self.decisions and self.decisions[-1].startswith("Best:") else self.decisions
        if self.best is not None:
            b = self.best
            lines.append(
                f"Best ({'most accurate' if self.prefer == 'accuracy' else 'fastest' if self.prefer == 'latency' else 'smallest'} "
                f"that fits): {b.recipe_name} [{b.id}] p50 {b.get('p50_ms', 0):.3g} ms, "
                f"{(b.get('size_bytes') or 0) / 1e6:.3g} MB, quality {trial_quality(b):.4f}"
                + (f", drop {100 * b.get('accuracy_drop'):+.2f} points" if b.get("accuracy_drop") is not None else "")
                + "."
            )
            if (warn := timing_warning(b)) is not None:
                lines.append(f"Caution: {warn}.")
        else:
            lines.append(f"Nothing fits the budget ({self.budget.describe()}). Closest candidates:")
            for t in self.closest():
                lines.append(f"  - {t.recipe.name} [{t.candidate.id}]: " + "; ".join(map(str, t.violations)))
            if not self.closest():
                lines.append("  (no candidate could be measured)")
        lines.append(f"Pareto front (accuracy / p50 / size): {', '.join(c.recipe_name for c in self.front) or '-'}.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "budget": self.budget.to_dict(),
            "prefer": self.prefer,
            "baseline_id": self.baseline.id,
            "best_id": self.best.id if self.best else None,
            "best_recipe": self.best.recipe_name if self.best else None,
            "best_timing_warning": timing_warning(self.best),
            "front_ids": [c.id for c in self.front],
            "trials": self.rows(),
            "study": self.study_name,
            "storage": self.storage,
            "space_size": self.space_size,
            "elapsed_s": self.elapsed_s,
            "executor": self.executor,
            "closest": [t.to_dict() for t in self.closest()] if self.best is None else [],
            "screened": self.screened,
            "decisions": self.decisions,
            "device": self.device,
        }


def resolve_prefer(prefer: str, budget: Budget) -> str:
    """What "best" means: ``"auto"`` is the most accurate that fits when there is a latency limit, else the
    fastest that fits."""
    if prefer != "auto":
        return prefer
    return "accuracy" if budget.max_latency_ms is not None else "latency"


def pick_best(cands: list[Candidate], budget: Budget, prefer: str) -> Candidate | None:
    fits = [c for c in cands if c.ok and c.get("p50_ms") is not None and not violations(c, budget)]
    if not fits:
        return None
    if prefer == "accuracy":
        return max(fits, key=lambda c: (round(trial_quality(c), 6), -c.get("p50_ms")))
    if prefer == "size":
        return min(fits, key=lambda c: (c.get("size_bytes") or 0, -trial_quality(c)))
    return min(fits, key=lambda c: (c.get("p50_ms"), -trial_quality(c)))


def optuna_constraints(c: Candidate | None, budget: Budget) -> list[float]:
    """Optuna constraint values (<= 0 means satisfied): excess over each limit, in relative units."""
    if c is None or not c.ok:
        return [1.0, 1.0, 1.0]
    out = []
    for limit, value in (
        (budget.max_latency_ms, c.get("p50_ms")),
        (budget.max_size_mb, (c.get("size_bytes") or 0) / 1e6),
        (budget.max_accuracy_drop, c.get("accuracy_drop")),
    ):
        if limit is None or value is None:
            out.append(-1.0)
        else:
            out.append((value - limit) / max(limit, 1e-3))
    return out


def study_storage(store: RunStore) -> str | None:
    if store.path == ":memory:":
        return None
    return f"sqlite:///{store.path.parent / 'search.sqlite'}"


def open_study(name: str, storage: str | None, *, resume: bool, sampler=None):
    """The search's Optuna study (accuracy up, p50 and size down), resumed when it exists unless ``resume`` is
    False (then it starts afresh; the candidates in the run store are still reused)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not resume and storage is not None:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass
    return optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        load_if_exists=True,
        directions=["maximize", "minimize", "minimize"],
    )
