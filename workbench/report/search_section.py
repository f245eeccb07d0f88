"""The report's search section: the trials of the searches recorded for a model, the front, the best within budget.

An architecture search (``workbench search MODEL --family architecture``) also keeps, with its study, every
architecture it timed untrained and why each student was trained or dropped: the section shows them as a table
and a paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import WorkbenchError
from ..store.candidate import Candidate
from ..store.runstore import RunStore
from ..tasks import pareto_front
from ..tasks.budget import Budget, violations
from . import charts
from .sections import phrases, quality_metric

__all__ = [
    "SearchTrial",
    "ArchitectureStudy",
    "SearchSummary",
    "search_trials",
    "architecture_studies",
    "search_summary",
]


# ---- search ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchTrial:
    """One finished search trial found in the study storage beside a run store."""

    study: str
    number: int
    candidate: Candidate
    verdict: str  # the verdict the search gave, against the search's own budget


@dataclass(frozen=True)
class ArchitectureStudy:
    """An architecture search's study: every architecture timed untrained (with its fate) and the decisions."""

    study: str
    screened: list[dict[str, Any]]
    decisions: list[str]


@dataclass
class SearchSummary:
    """The report's search section: a Markdown text (one line when nothing was searched), the Pareto-front
    chart and the tables (``display(*charts)``, ``display(*tables)``: both empty when nothing was searched)."""

    text: str
    charts: list[Any] = field(default_factory=list)
    tables: list[Any] = field(default_factory=list)
    best: Candidate | None = None
    trials: list[SearchTrial] = field(default_factory=list)
    #: the architecture searches among the studies (their untrained timings and decisions)
    architectures: list[ArchitectureStudy] = field(default_factory=list)


def search_trials(store: RunStore, model: str) -> list[SearchTrial]:
    """Every measured trial of every search study stored beside ``store`` whose candidate is ``model``'s
    (one per candidate; studies are read, never created: no search.sqlite, no trials)."""
    if store.path == ":memory:" or not (store.path.parent / "search.sqlite").is_file():
        return []
    import optuna

    from ..search.run import study_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = study_storage(store)
    out: list[SearchTrial] = []
    seen: set[str] = set()
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        for t in study.get_trials(deepcopy=False):
            cid = t.user_attrs.get("candidate_id")
            if t.user_attrs.get("duplicate") or not cid or cid in seen:
                continue
            try:
                cand = store.get(cid)
            except WorkbenchError:  # the run store was replaced since: nothing to show for this trial
                continue
            if cand.model != model:
                continue
            seen.add(cid)
            out.append(SearchTrial(name, t.number, cand, str(t.user_attrs.get("verdict", ""))))
    return out


def architecture_studies(store: RunStore, model: str, studies: set[str] | None = None) -> list[ArchitectureStudy]:
    """The architecture searches stored beside ``store`` for ``model``: the studies named in ``studies`` (those
    holding ``model``'s trials) and those named after ``model`` by the search, which may have trained no student,
    that keep the untrained timings (their ``screened`` attribute). Read, never created."""
    if store.path == ":memory:" or not (store.path.parent / "search.sqlite").is_file():
        return []
    import optuna

    from ..search.run import study_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    own = re.compile(rf"{re.escape(model)}-[0-9a-f]{{8}}-architecture-.+")
    out = []
    for s in optuna.get_all_study_summaries(study_storage(store), include_best_trial=False):
        screened = s.user_attrs.get("screened")
        if not isinstance(screened, list) or not (s.study_name in (studies or ()) or own.fullmatch(s.study_name)):
            continue
        decisions = s.user_attrs.get("decisions")
        rows = [r for r in screened if isinstance(r, dict)]
        out.append(ArchitectureStudy(s.study_name, rows, [str(d) for d in decisions or []]))
    return sorted(out, key=lambda a: a.study)


def _md(text: str) -> str:
    """Plain text inside Markdown: the characters Markdown would read as markup, escaped."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def _architecture_tables(archs: list[ArchitectureStudy]) -> tuple[list[str], list[Any]]:
    """A paragraph of decisions and a table of the architectures timed untrained, per architecture search."""
    import pandas as pd

    text, tables = [], []
    for a in archs:
        n_trained = sum(str(r.get("fate", "")).startswith("trained") for r in a.screened)
        text.append(
            f"**Architecture search** `{a.study}`: {len(a.screened)} architectures timed untrained, {n_trained} "
            "trained. " + (" ".join(_md(d) for d in a.decisions) or "(no decisions recorded)")
        )
        rows = [
            {
                "architecture": r.get("label", ""),
                "untrained p50 ms": r.get("judged_p50_ms", r.get("p50_ms")),
                "judged on": r.get("judged_by", "host") if "error" not in r else "",
                "x baseline": r.get("speedup"),
                "size MB": r["size_bytes"] / 1e6 if r.get("size_bytes") is not None else None,
                "fate": r.get("fate") or (f"could not be built: {r['error']}" if "error" in r else ""),
            }
            for r in a.screened
        ]
        frame = pd.DataFrame(
            rows, columns=["architecture", "untrained p50 ms", "judged on", "x baseline", "size MB", "fate"]
        )
        tables.append(
            frame.style.hide(axis="index")
            .format({"untrained p50 ms": "{:.3g}", "x baseline": "{:.2f}", "size MB": "{:.3g}"}, na_rep="")
            .set_caption(f"Architectures timed untrained ({a.study})")
        )
    return text, tables


def _baseline_of(store: RunStore, cand: Candidate) -> Candidate | None:
    """The FP32 baseline a searched candidate was built from (its lineage's root)."""
    c = cand
    for _ in range(32):
        if not c.recipe.get("steps"):
            return c
        if not c.parent_id:
            return None
        try:
            c = store.get(c.parent_id)
        except WorkbenchError:
            return None
    return None


def search_summary(store: RunStore, model: str, budget: Budget) -> SearchSummary:
    """The search section: the trials' Pareto front, the best candidate within ``budget`` (the search's rule:
    the most accurate that fits when there is a latency limit, else the fastest), and every rejected candidate
    with the constraint it broke and by how much."""
    import pandas as pd

    from ..search.result import pick_best, resolve_prefer

    trials = search_trials(store, model)
    archs = architecture_studies(store, model, {t.study for t in trials})
    arch_text, arch_tables = _architecture_tables(archs)
    if not trials and archs:
        return SearchSummary(
            "\n\n".join([f"No searched candidate of `{model}` was trained or measured.", *arch_text]),
            tables=arch_tables,
            architectures=archs,
        )
    if not trials:
        return SearchSummary(
            f"No search has been run for `{model}` with this run store "
            f"(`workbench search {model}` or the dashboard's Search tab records one)."
        )
    base = _baseline_of(store, trials[0].candidate)
    pool = ([base] if base is not None else []) + [t.candidate for t in trials]
    prefer = resolve_prefer("auto", budget)
    best = pick_best(pool, budget, prefer)
    front = pareto_front(pool)
    studies = sorted({t.study for t in trials})
    quality = quality_metric(pool)
    text = [
        f"**{len(trials)} trials** in {len(studies)} search stud{'y' if len(studies) == 1 else 'ies'} "
        f"({', '.join(f'`{s}`' for s in studies)}), judged against this report's budget ({budget.describe()}). "
        f"Pareto front ({quality}, p50 and size together): {', '.join(c.recipe_name for c in front) or '-'}."
    ]
    if best is not None:
        rule = "the most accurate that fits" if prefer == "accuracy" else "the fastest that fits"
        text.append(
            f"Best searched candidate within the budget ({rule}): **{best.recipe_name}** (`{best.id}`): "
            + phrases(best, (quality, "p50_ms", "size_mb"))
            + "."
        )
    else:
        text.append(f"**No searched candidate fits** the budget ({budget.describe()}).")
    chart = charts.tradeoff_chart(
        pool,
        budget,
        y=quality,
        selected=[best.id] if best else [],
        title=f"{model}: search trials, {charts.METRIC_TITLES.get(quality, quality)} vs p50 latency",
    )
    rows = []
    for t in trials:
        for v in violations(t.candidate, budget):
            limit, value, over = v.amounts()
            rows.append(
                {
                    "trial": t.number,
                    "recipe": t.candidate.recipe_name,
                    "id": t.candidate.id,
                    "constraint": v.constraint if v.constraint != "status" else f"not measured ({t.candidate.status})",
                    "limit": limit,
                    "measured": value,
                    "over by": over,
                }
            )
    n_rejected = len({r["id"] for r in rows})
    text.append(
        f"{n_rejected} of {len(trials)} searched candidates break the budget"
        + (": each constraint broken, and by how much, below." if rows else ".")
    )
    tables = []
    if rows:
        tables.append(
            pd.DataFrame(rows).style.hide(axis="index").set_caption("Rejected search candidates"),
        )
    text += arch_text
    tables += arch_tables
    return SearchSummary("\n\n".join(text), [chart], tables, best, trials, archs)
