"""ResultsPanel: live charts (quality vs latency with the Pareto front and the budget; sizes), a candidate
table, and two candidates side by side. Causal LMs: ``set_axes("tokens_per_s", "perplexity")``, and the table
shows the columns ``workbench optimize`` prints for them (tokens/s, prefill, perplexity with its CI).

Charts render with no network: ``renderer="jupyter"`` shows Altair's JupyterChart widget with its
JavaScript bundled offline (interactive tooltips); ``renderer="svg"`` renders a static SVG in the
kernel with vl-convert (works in any front end that shows images, Voila and exported notebooks too).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from workbench.measure.noise import machine_speed_note
from workbench.report.charts import candidates_frame, compare_frame, size_chart, tradeoff_chart
from workbench.store.candidate import Candidate
from workbench.tasks import Task, task_of, tasks_of
from workbench.tasks.budget import Budget, timing_warning, violations

from ._common import help_line, replace_output

__all__ = ["ResultsPanel", "RENDERERS"]

RENDERERS = ("jupyter", "svg")
_EMBED = {"renderer": "svg", "actions": False}  # svg: marks stay in the DOM (screen readers, browser tests)


class _SvgView:
    """An Output widget that shows a chart as a static SVG image rendered in the kernel."""

    def __init__(self) -> None:
        self.widget = w.Output()

    def update(self, chart: Any) -> None:
        from IPython.display import SVG

        from workbench.report.charts import to_svg

        replace_output(self.widget, SVG(to_svg(chart)))


class _JupyterView:
    """Altair's JupyterChart widget (anywidget), its JavaScript loaded from vl-convert: no CDN."""

    def __init__(self, chart: Any) -> None:
        import altair as alt

        alt.JupyterChart.enable_offline()
        self.widget = alt.JupyterChart(chart, embed_options=_EMBED)

    def update(self, chart: Any) -> None:
        # Send the spec unvalidated: JupyterChart's own ``chart`` observer validates it against the Vega-Lite
        # schema on every update (~50 ms each, most of a redraw). The builders' specs are validated in the
        # tests, and these charts have no selections or params the observer would need to wire up.
        self.widget.spec = chart.to_dict(validate=False)


class ResultsPanel(w.VBox):
    """Show candidates; ``show(cands, budget, current=...)`` may be called from the worker thread.

    >>> panel = ResultsPanel(renderer="svg")
    >>> panel.show([])
    >>> panel.tradeoff.to_dict()["layer"][1]["data"]["values"]
    []
    """

    def __init__(
        self, renderer: str = "jupyter", *, x: str = "p50_ms", y: str | None = None, size_metric: str = "size_mb"
    ):
        if renderer not in RENDERERS:
            raise ValueError(
                f"The 'renderer' parameter of ResultsPanel must be one of {', '.join(RENDERERS)}. "
                f"Got {renderer!r} instead."
            )
        self.renderer, self.x, self.y, self.size_metric = renderer, x, y, size_metric
        self.candidates: list[Candidate] = []
        self.budget: Budget | None = None
        self.current: str | None = None
        self.updates = 0  # how many times the charts were redrawn (tests, benchmarks)
        self._lock = threading.RLock()
        self.tradeoff = tradeoff_chart([], None, x=x, y=y)
        self.size = size_chart([], None, metric=size_metric)
        if renderer == "jupyter":
            self._views = (_JupyterView(self.tradeoff), _JupyterView(self.size))
        else:
            self._views = (_SvgView(), _SvgView())
        self.table = w.HTML()
        self.compare = w.SelectMultiple(options=[], rows=5, description="Compare", layout=w.Layout(width="520px"))
        self.compare.tooltip = "Select two candidates (Ctrl- or Cmd-click) to see them side by side."
        self.compare_view = w.HTML()
        self.verdict = w.HTML()
        super().__init__(
            [
                w.HTML("<b>Results</b>"),
                help_line(
                    "Each point is one measured setting: up and left is better. The dashed green line is the "
                    "Pareto front (nothing beats those points on both axes); orange dashed lines are your budget. "
                    "Hover a point for details."
                ),
                self._views[0].widget,
                self.verdict,
                self._views[1].widget,
                self.table,
                self.compare,
                help_line("Select two candidates (Ctrl- or Cmd-click) to see them side by side."),
                self.compare_view,
            ]
        )
        self.compare.observe(self._on_compare, names="value")
        for v in self._views:
            if renderer == "svg":
                v.update(self.tradeoff if v is self._views[0] else self.size)

    # ---- public ---------------------------------------------------------------------------------
    @property
    def chart_widgets(self) -> tuple[w.Widget, w.Widget]:
        return self._views[0].widget, self._views[1].widget

    def show(self, cands: Sequence[Candidate], budget: Budget | None = None, current: str | None = None) -> None:
        """Replace the candidates shown; ``current`` (an id) is highlighted until two are selected to compare."""
        with self._lock:
            self.candidates = [c for c in cands if c.status != "intermediate"]
            self.budget = budget
            self.current = current
            by_id = {c.id: c for c in self.candidates}
            options = [(self._option_label(c), c.id) for c in reversed(self.candidates)]
            keep = tuple(i for i in self.compare.value if i in by_id)
            if [o[1] for o in self.compare.options] != [o[1] for o in options]:
                self.compare.unobserve(self._on_compare, names="value")
                self.compare.options = options
                self.compare.value = keep
                self.compare.observe(self._on_compare, names="value")
            self._redraw()

    def set_axes(self, x: str = "p50_ms", y: str | None = None) -> None:
        """The trade-off chart's metrics (``y`` None = accuracy, else fidelity); redraws when they change.

        >>> panel.set_axes("tokens_per_s", "perplexity")   # a causal LM   # doctest: +SKIP
        """
        with self._lock:
            if (x, y) == (self.x, self.y):
                return
            self.x, self.y = x, y
            self._redraw()

    @property
    def highlighted(self) -> list[str]:
        sel = list(self.compare.value)
        return sel if sel else ([self.current] if self.current else [])

    # ---- drawing --------------------------------------------------------------------------------
    def _option_label(self, c: Candidate) -> str:
        return task_of(c).summary(c)

    def _on_compare(self, _change: Any = None) -> None:
        with self._lock:
            self._redraw()

    def _redraw(self) -> None:
        sel = self.highlighted
        self.tradeoff = tradeoff_chart(self.candidates, self.budget, x=self.x, y=self.y, selected=sel)
        self.size = size_chart(self.candidates, self.budget, metric=self.size_metric, selected=sel)
        self._views[0].update(self.tradeoff)
        self._views[1].update(self.size)
        self.table.value = self._table_html()
        self.compare_view.value = self._compare_html()
        self.verdict.value = self._verdict_html()
        self.updates += 1

    def _table_html(self) -> str:
        if not self.candidates:
            return "<i>No candidates yet: press Run.</i>"
        task = tasks_of(self.candidates)
        if task.table_rows is not Task.table_rows:  # a task with columns of its own (causal LMs: the CLI's)
            import pandas as pd

            df = pd.DataFrame(task.table_rows(self.candidates))
        else:
            df = candidates_frame(self.candidates)
        df.insert(0, "", ["▶" if i == self.current else "" for i in df["id"]])
        if self.budget is not None:
            df["budget"] = [
                "fits"
                if c.ok and not violations(c, self.budget)
                else ("–" if not c.ok else "; ".join(map(str, violations(c, self.budget))))
                for c in self.candidates
            ]
        df = df.dropna(axis=1, how="all")
        moved = machine_speed_note([c.metrics for c in self.candidates if c.ok])
        return (
            "<div style='max-height:260px;overflow:auto;font-size:12px'>"
            + df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–", classes="wb-candidates", border=0)
            + "</div>"
            + (
                f"<div class='wb-machine-speed' style='font-size:11px;color:#555'>{html.escape(moved)}</div>"
                if moved
                else ""
            )
        )

    def _compare_html(self) -> str:
        ids = list(self.compare.value)
        if len(ids) != 2:
            return "" if not ids else "<i>Select exactly two candidates to compare them.</i>"
        by_id = {c.id: c for c in self.candidates}
        a, b = by_id[ids[0]], by_id[ids[1]]
        df = compare_frame(a, b)
        return (
            "<div style='font-size:12px'>"
            + df.to_html(float_format=lambda v: f"{v:.4g}", na_rep="", classes="wb-compare", border=0)
            + "</div>"
        )

    def _verdict_html(self) -> str:
        by_id = {c.id: c for c in self.candidates}
        c = by_id.get(self.current or "")
        if c is None or self.budget is None or self.budget.describe() == "no limits":
            return ""
        if not c.ok:
            return ""
        v = violations(c, self.budget)
        text = (
            f"{c.recipe_name} fits the budget ({self.budget.describe()})."
            if not v
            else f"{c.recipe_name} breaks the budget: " + "; ".join(map(str, v)) + "."
        )
        warn = timing_warning(c)
        if warn:  # a verdict resting on a latency timed on a busy machine says so
            text += f" Caution: {warn} (or press Re-time)."
        color = "#c62828" if v else ("#b26a00" if warn else "#2e7d32")
        return f"<div style='color:{color}'>{html.escape(text)}</div>"
