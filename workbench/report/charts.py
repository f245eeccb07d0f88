"""Altair chart specs and tables for candidates: pure spec builders, no widgets, no display.

Charts are tested through ``chart.to_dict()`` and rendered offline with vl-convert (``to_svg``);
the panels in ``widgets/`` only place them on screen. Metric keys and axis titles are parameters,
so the same builders draw language models (``perplexity`` vs ``tokens_per_s``) as well as classifiers.

>>> from workbench import RunStore
>>> from workbench.charts import tradeoff_chart, to_svg
>>> cands = RunStore().candidates("digits-cnn")               # doctest: +SKIP
>>> svg = to_svg(tradeoff_chart(cands, selected=[cands[-1].id]))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..store.candidate import Candidate
from ..tasks import METRICS, metric_title, metric_value, pareto_front, tasks_of
from ..tasks.base import noise_note, timing_cell
from ..tasks.budget import Budget

if TYPE_CHECKING:  # altair imports IPython and ipywidgets: keep it out of ``import workbench.charts``
    import altair as alt
    import pandas as pd

__all__ = [
    "METRIC_TITLES",
    "HIGHER_IS_BETTER",
    "candidate_label",
    "quality_metric",
    "speed_metric",
    "tradeoff_chart",
    "size_chart",
    "candidates_frame",
    "compare_frame",
    "to_svg",
]

#: axis titles and directions come from the one metric table (workbench.tasks.METRICS)
METRIC_TITLES: dict[str, str] = {k: m.title for k, m in METRICS.items()}
#: metrics where more is better; every other metric (latency, size, perplexity) is better when lower
HIGHER_IS_BETTER = frozenset(k for k, m in METRICS.items() if m.higher_is_better)

_WIDTH, _HEIGHT = 420, 260
_ROLE_DOMAIN = ["baseline", "candidate", "selected"]
_ROLE_COLORS = ["#7f7f7f", "#4c78a8", "#e45756"]


def _title(key: str) -> str:
    return metric_title(key)


def candidate_label(c: Candidate) -> str:
    """Short label for legends and tables, e.g. ``int8-dynamic/pc · 3f2a``."""
    return f"{c.recipe_name} · {c.id[:4]}"


def quality_metric(cands: Iterable[Candidate]) -> str:
    """The candidates' task's quality metric: ``"accuracy"`` with labelled data, else ``"fidelity"``;
    ``"perplexity"`` for causal LMs."""
    measured = [c for c in cands if c.ok]
    return tasks_of(measured).quality_metric([c.metrics for c in measured])


def speed_metric(cands: Sequence[Candidate]) -> str:
    """The candidates' task's speed axis: p50 latency, or decode tokens/s for causal LMs."""
    return tasks_of(list(cands)).speed_metric


def _role(c: Candidate, selected: Sequence[str]) -> str:
    if c.id in selected:
        return "selected"
    return "baseline" if not c.recipe.get("steps") else "candidate"


def _baseline(cands: Sequence[Candidate]) -> Candidate | None:
    base = [c for c in cands if c.ok and not c.recipe.get("steps")]
    return base[-1] if base else None


def _rows(cands: Sequence[Candidate], x: str, y: str, selected: Sequence[str], front_ids: set[str]) -> list[dict]:
    rows = []
    for c in cands:
        xv, yv = metric_value(c, x), metric_value(c, y)
        if not c.ok or xv is None or yv is None:
            continue
        rows.append(
            {
                "id": c.id,
                "recipe": c.recipe_name,
                "label": candidate_label(c),
                "status": c.status,
                "runtime": c.runtime,
                "role": _role(c, selected),
                "pareto": c.id in front_ids,
                "x": xv,
                "y": yv,
                "size_mb": metric_value(c, "size_mb"),
                "speedup": metric_value(c, "speedup"),
                # a latency measured on a busy machine is drawn faint and says so in its tooltip
                "timing": "noisy" if c.get("noisy") else "trusted",
                "noise": c.get("noise") or "",
                "marker": 220 if c.id in selected else 90,
            }
        )
    return rows


def tradeoff_chart(
    cands: list[Candidate],
    budget: Budget | None = None,
    *,
    x: str = "p50_ms",
    y: str | None = None,
    selected: Sequence[str] = (),
    title: str | None = None,
) -> alt.LayerChart:
    """Quality vs latency scatter: one point per measured candidate, the Pareto front as a line,
    budget limits as rules, the ``selected`` candidate ids highlighted.

    ``y`` defaults to ``"accuracy"`` when candidates have it, else ``"fidelity"``. The accuracy-drop
    limit is drawn as a horizontal rule at ``baseline accuracy - max_accuracy_drop``.

    >>> chart = tradeoff_chart(cands, Budget(max_latency_ms=5), selected=[cands[1].id])  # doctest: +SKIP
    >>> chart.to_dict()["layer"][0]["mark"]["type"]                                    # doctest: +SKIP
    'line'
    """
    import altair as alt

    y = y or quality_metric(cands)
    points = [c for c in cands if c.ok and metric_value(c, x) is not None and metric_value(c, y) is not None]
    # the line joins the front on these two axes; the "pareto" flag is the library's own front
    # (quality, p50 and size together), so a point off the line can still be worth it for its size
    line_ids = {c.id for c in pareto_front(points, (x, y))}
    rows = _rows(points, x, y, selected, {c.id for c in pareto_front(points)})
    front_rows = sorted((r for r in rows if r["id"] in line_ids), key=lambda r: r["x"])
    model = points[0].model if points else (cands[0].model if cands else "")
    noisy = sum(r["timing"] == "noisy" for r in rows)
    title = title or (
        f"{model}: {_title(y)} vs {_title(x)} ({len(rows)} measured" + (f", {noisy} noisy)" if noisy else ")")
    ).lstrip(": ")

    xs = alt.X("x:Q", title=_title(x), scale=alt.Scale(zero=False, nice=True))
    ys = alt.Y("y:Q", title=_title(y), scale=alt.Scale(zero=False, nice=True), axis=alt.Axis(format=".4~g"))
    tooltip = [
        alt.Tooltip("recipe:N", title="recipe"),
        alt.Tooltip("id:N", title="id"),
        alt.Tooltip("status:N", title="status"),
        alt.Tooltip("x:Q", title=_title(x), format=".4g"),
        alt.Tooltip("y:Q", title=_title(y), format=".4g"),
        alt.Tooltip("size_mb:Q", title="size (MB)", format=".3g"),
        alt.Tooltip("speedup:Q", title="speed-up", format=".2f"),
        alt.Tooltip("pareto:N", title="on Pareto front"),
        alt.Tooltip("timing:N", title="timing"),
        alt.Tooltip("noise:N", title="why noisy"),
    ]
    layers = [
        # the front first, so the points are drawn over it
        alt.Chart(alt.Data(values=front_rows), description="pareto-front")
        .mark_line(color="#54a24b", strokeDash=[4, 3], point=False)
        .encode(x=xs, y=ys, order=alt.Order("x:Q")),
        alt.Chart(alt.Data(values=rows), description="candidates")
        .mark_point(filled=True, size=90)
        .encode(
            x=xs,
            y=ys,
            opacity=alt.Opacity(
                "timing:N", title="timing", scale=alt.Scale(domain=["trusted", "noisy"], range=[0.9, 0.3])
            ),
            color=alt.Color("role:N", title="", scale=alt.Scale(domain=_ROLE_DOMAIN, range=_ROLE_COLORS)),
            shape=alt.Shape("runtime:N", title="runtime"),
            # a raw-valued field, not a second scale on "role": that would merge with (and hide) the colour legend
            size=alt.Size("marker:Q", scale=None, legend=None),
            tooltip=tooltip,
        ),
    ]
    layers += _budget_rules(cands, budget, x, y, xs, ys)
    # LayerChart(...) rather than layer().properties(): properties() re-validates every field (slow on redraws)
    return alt.LayerChart(
        layer=layers, title=title, width=_WIDTH, height=_HEIGHT, usermeta={"workbench": {"x": x, "y": y}}
    )


def _budget_rules(cands, budget, x, y, xs, ys) -> list:
    import altair as alt

    if budget is None:
        return []
    vertical: list[dict] = []
    horizontal: list[dict] = []
    if budget.max_latency_ms is not None and x == "p50_ms":
        vertical.append({"x": budget.max_latency_ms, "limit": f"max p50 {budget.max_latency_ms:g} ms"})
    if budget.max_size_mb is not None and x == "size_mb":
        vertical.append({"x": budget.max_size_mb, "limit": f"max size {budget.max_size_mb:g} MB"})
    if budget.min_tokens_per_s is not None and x == "tokens_per_s":
        vertical.append({"x": budget.min_tokens_per_s, "limit": f"min {budget.min_tokens_per_s:g} tokens/s"})
    base = _baseline(cands)
    if (
        budget.max_accuracy_drop is not None
        and base is not None
        and metric_value(base, y) is not None
        and y in ("accuracy", "fidelity")
    ):
        floor = metric_value(base, y) - budget.max_accuracy_drop
        horizontal.append({"y": floor, "limit": f"max drop {100 * budget.max_accuracy_drop:g} points"})
    if budget.max_perplexity_increase is not None and base is not None and y == "perplexity" and metric_value(base, y):
        ceiling = metric_value(base, y) * (1 + budget.max_perplexity_increase)
        horizontal.append({"y": ceiling, "limit": f"max perplexity +{100 * budget.max_perplexity_increase:g} %"})
    rule = dict(color="#f58518", strokeDash=[6, 4], strokeWidth=1.5)
    out = []
    if vertical:
        out.append(
            alt.Chart(alt.Data(values=vertical), description="budget")
            .mark_rule(**rule)
            .encode(x=xs, tooltip=[alt.Tooltip("limit:N")])
        )
    if horizontal:
        out.append(
            alt.Chart(alt.Data(values=horizontal), description="budget")
            .mark_rule(**rule)
            .encode(y=ys, tooltip=[alt.Tooltip("limit:N")])
        )
    return out


def size_chart(
    cands: list[Candidate],
    budget: Budget | None = None,
    *,
    metric: str = "size_mb",
    selected: Sequence[str] = (),
    title: str | None = None,
) -> alt.LayerChart:
    """One bar per measured candidate (``metric``, size in MB by default), the budget as a rule.

    >>> size_chart(cands, Budget(max_size_mb=0.1)).to_dict()["layer"][1]["mark"]["type"]  # doctest: +SKIP
    'rule'
    """
    import altair as alt

    rows = [
        {
            "id": c.id,
            "label": candidate_label(c),
            "recipe": c.recipe_name,
            "value": metric_value(c, metric),
            "role": _role(c, selected),
        }
        for c in cands
        if c.ok and metric_value(c, metric) is not None
    ]
    model = cands[0].model if cands else ""
    title = title or f"{model}: {_title(metric)}".lstrip(": ")
    bars = (
        alt.Chart(alt.Data(values=rows), description="sizes")
        .mark_bar()
        .encode(
            x=alt.X("label:N", title="candidate", sort=None, axis=alt.Axis(labelAngle=-30, labelLimit=160)),
            y=alt.Y("value:Q", title=_title(metric)),
            color=alt.Color("role:N", title="", scale=alt.Scale(domain=_ROLE_DOMAIN, range=_ROLE_COLORS)),
            tooltip=[
                alt.Tooltip("recipe:N"),
                alt.Tooltip("id:N"),
                alt.Tooltip("value:Q", title=_title(metric), format=".4g"),
            ],
        )
    )
    layers = [bars]
    if budget is not None and budget.max_size_mb is not None and metric == "size_mb":
        layers.append(
            alt.Chart(
                alt.Data(values=[{"value": budget.max_size_mb, "limit": f"max {budget.max_size_mb:g} MB"}]),
                description="budget",
            )
            .mark_rule(color="#f58518", strokeDash=[6, 4], strokeWidth=1.5)
            .encode(y=alt.Y("value:Q"), tooltip=[alt.Tooltip("limit:N")])
        )
    return alt.LayerChart(layer=layers, title=title, width=_WIDTH, height=180)


# ---- tables ----------------------------------------------------------------------------------
_TABLE_METRICS = ("p50_ms", "size_mb", "accuracy", "accuracy_drop", "fidelity", "speedup")


def candidates_frame(cands: Iterable[Candidate], metrics: Sequence[str] = _TABLE_METRICS) -> pd.DataFrame:
    """One row per candidate (intermediate steps left out): id, recipe, status, runtime, the ``metrics``, error.

    >>> candidates_frame(store.candidates("digits-cnn")).columns[:3].tolist()  # doctest: +SKIP
    ['id', 'recipe', 'status']
    """
    import pandas as pd

    rows = []
    for c in cands:
        if c.status == "intermediate":
            continue
        row: dict[str, Any] = {"id": c.id, "recipe": c.recipe_name, "status": c.status, "runtime": c.runtime}
        for m in metrics:
            row[m] = metric_value(c, m)
        row["timing"] = timing_cell(c.metrics)
        row["error"] = c.error or noise_note(c.metrics)
        rows.append(row)
    return pd.DataFrame(rows, columns=["id", "recipe", "status", "runtime", *metrics, "timing", "error"])


def compare_frame(a: Candidate, b: Candidate, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Two candidates side by side: one row per field, columns ``a.id``, ``b.id`` and ``b - a``.

    >>> compare_frame(base, int8).loc["p50_ms"]   # doctest: +SKIP
    """
    import pandas as pd

    metrics = list(
        metrics
        or (
            "p50_ms",
            "p90_ms",
            "size_mb",
            "accuracy",
            "accuracy_drop",
            "fidelity",
            "cosine",
            "speedup",
            "perplexity",
            "tokens_per_s",
        )
    )
    fields: dict[str, tuple[Any, Any]] = {
        "recipe": (a.recipe_name, b.recipe_name),
        "status": (a.status, b.status),
        "runtime": (a.runtime, b.runtime),
        "steps": (_steps(a), _steps(b)),
    }
    for m in metrics:
        va, vb = metric_value(a, m), metric_value(b, m)
        if va is not None or vb is not None:
            fields[m] = (va, vb)
    fields["threads"] = (a.threads, b.threads)
    fields["error"] = (a.error or "", b.error or "")
    ca, cb = (a.id, b.id) if a.id != b.id else (f"{a.id} (a)", f"{b.id} (b)")
    rows = []
    for name, (va, vb) in fields.items():
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        rows.append({"field": name, ca: va, cb: vb, "b - a": (vb - va) if numeric else None})
    return pd.DataFrame(rows).set_index("field")


def _steps(c: Candidate) -> str:
    steps = c.recipe.get("steps", [])
    if not steps:
        return "(fp32 baseline)"
    parts = []
    for s in steps:
        opts = {k: v for k, v in s.items() if k not in ("kind", "version")}
        parts.append(s["kind"] + (json.dumps(opts, sort_keys=True) if opts else ""))
    return " → ".join(parts)


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render a chart to SVG offline (vl-convert, no browser, no network)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())
