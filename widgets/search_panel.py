"""Search mode: set a device budget, search, and watch the Pareto front grow trial by trial.

>>> from widgets.search_panel import SearchPanel
>>> SearchPanel("digits-cnn")          # doctest: +SKIP

The panel only calls the workbench's public API (``workbench.search``, ``workbench.charts``); the
search runs on a background thread so the kernel still receives a Cancel click. Every trial redraws
the trade-off chart (SVG rendered offline) and appends a row to the trials table.

With the *architecture* family (on its own: it cannot be mixed with the recipe families) the search builds
students of other depths and widths (:mod:`workbench.search.nas`): each architecture is first timed untrained
and appears at once in a second table (and as a tick under the chart's latency axis), then the most promising
are trained and drawn as trials. The *time budget* and *train steps* boxes size that search; when it ends each
untrained architecture's fate (dropped, trained, not trained) fills its row and the status says why.

Inside the dashboard (``Workbench``, its *Search* tab) the panel shares the dashboard's model, run store,
budget, latency protocol and worker thread: ``model``, ``budget`` and ``bench`` are then callables read
when a search starts, and the panel's own budget boxes are hidden.
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import ipywidgets as w

from workbench import (
    BenchConfig,
    CancelledError,
    LoadedModel,
    RunContext,
    RunStore,
    WorkbenchError,
    load_model,
    run_baseline,
)
from workbench.lm.task import CausalLM
from workbench.report.charts import to_svg, tradeoff_chart
from workbench.search.nas import ARCHITECTURE, ArchitectureSpace
from workbench.search.result import SearchResult, TrialRecord
from workbench.search.run import search
from workbench.search.space import TRAINING_FAMILIES, SearchSpace, family_names
from workbench.tasks.budget import Budget

from ._common import Worker, guarded

__all__ = ["SearchPanel"]


def _limit(v: float) -> float | None:
    return None if v is None or v <= 0 else float(v)


def _p50(r: TrialRecord) -> str:
    v = r.candidate.get("p50_ms") if r.candidate is not None else None
    return "" if v is None else f"{v:.3g}"


def _num(v: Any, fmt: str = ".3g") -> str:
    return "" if v is None else format(v, fmt)


def _untrained_p50(row: dict) -> float | None:
    """An untrained architecture's host p50 (what the screening ranks it on)."""
    return row.get("p50_ms")


def _fate(row: dict) -> str:
    """What became of an architecture timed untrained (set when the screening ends)."""
    if row.get("fate"):
        return str(row["fate"])
    if "error" in row:
        return f"could not be built: {row['error']}"
    return "timed; its fate follows the screening"


class SearchPanel(w.VBox):
    """Budget inputs, a Search / Cancel pair, live progress, the trade-off chart and the trials table.

    ``model`` is a name, a LoadedModel, or a callable returning one (called on the search's thread when a
    search starts). ``budget`` (a callable returning a Budget) replaces the panel's own budget boxes;
    ``bench`` is a BenchConfig or a callable returning one; ``worker`` runs the search on that Worker
    (the dashboard's single thread) instead of a thread of its own.
    """

    def __init__(
        self,
        model: str | LoadedModel | Callable[[], str | LoadedModel] = "digits-cnn",
        store: RunStore | str | None = None,
        *,
        bench: BenchConfig | Callable[[], BenchConfig] | None = None,
        budget: Callable[[], Budget] | None = None,
        worker: Worker | None = None,
        **load_kw: Any,
    ):
        self.model = model
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.bench = bench
        self.load_kw = load_kw
        self.worker = worker
        self._budget_fn = budget
        self.result: SearchResult | None = None
        self.records: list[TrialRecord] = []
        #: architecture search: every architecture timed untrained so far (its fate once the search ends)
        self.screened: list[dict[str, Any]] = []
        self.redraws = 0
        self.tradeoff: Any = None  # the Altair chart last drawn (its spec holds the trials as data)
        self._ctx: RunContext | None = None
        self._thread: threading.Thread | None = None
        self._future: Any = None
        self._unavailable: str | None = None
        self._budget_used: Budget | None = None
        self._baseline: Any = None  # the architecture search's baseline, drawn while the students are timed
        self._n_archs = 0
        self._screening = False
        self._trial_listeners: list[Callable[[TrialRecord], None]] = []
        self._screen_listeners: list[Callable[[dict], None]] = []
        self._done_listeners: list[Callable[[SearchResult | None], None]] = []
        style = {"description_width": "140px"}
        self.max_latency = w.FloatText(0.0, description="max p50 (ms)", style=style, tooltip="0 = no latency limit")
        self.max_size = w.FloatText(0.0, description="max size (MB)", style=style, tooltip="0 = no size limit")
        self.max_drop = w.FloatText(
            0.5,
            description="max drop (points)",
            style=style,
            tooltip="accuracy points the candidate may lose; 0 = no limit",
        )
        self.threads = w.BoundedIntText(
            min(2, os.cpu_count() or 1), min=1, max=256, description="device threads", style=style
        )
        self.trials = w.IntSlider(12, min=1, max=64, description="recipes to try", style=style)
        fams = family_names()
        self.families = w.SelectMultiple(
            options=fams,
            value=tuple(f for f in fams if f not in TRAINING_FAMILIES),
            rows=min(9, len(fams)),
            description="families",
            style=style,
            tooltip="architecture: students of other depths and widths, searched on their own",
        )
        # the architecture search's own settings, shown while "architecture" is selected
        self.time_budget = w.BoundedFloatText(
            20.0,
            min=0.1,
            max=7 * 24 * 60,
            description="time budget (min)",
            style=style,
            tooltip="the whole architecture search, screening included: no student starts that would not finish",
        )
        self.train_steps = w.BoundedIntText(
            480,
            min=1,
            max=1_000_000,
            description="train steps",
            style=style,
            tooltip="distillation steps per student",
        )
        self.architecture_box = w.VBox([self.time_budget, self.train_steps])
        self.families.observe(self._on_families, names="value")
        self.executor = w.Dropdown(options=["local", "ray"], value="local", description="run on", style=style)
        self.address = w.Text("", placeholder="host:port (ray only)", description="ray address", style=style)
        self.run_button = w.Button(description="Search", button_style="primary", icon="search")
        self.cancel_button = w.Button(description="Cancel", disabled=True, icon="stop")
        self.progress = w.IntProgress(0, min=0, max=1, description="trials")
        self.status = w.HTML("")
        self.chart = w.HTML("")
        self.table = w.HTML("")
        self.untrained = w.HTML("")  # the architectures timed untrained (architecture search)
        self.run_button.on_click(guarded(self.run, self._show, "Search"))
        self.cancel_button.on_click(guarded(self.cancel, self._show, "Cancel"))
        help_ = w.HTML(
            '<div style="color:#555;font-size:12px">Best = the most accurate candidate that fits when a '
            "latency limit is set, else the fastest that fits. Candidates already measured are reused; "
            "a stopped search resumes where it left off.</div>"
        )
        own_budget = [self.max_latency, self.max_size, self.max_drop, self.threads]
        if budget is not None:  # the dashboard's budget panel sets the limits and threads
            for c in own_budget:
                c.layout.display = "none"
        form = w.VBox([*own_budget, self.trials, self.families, self.architecture_box, self.executor, self.address])
        super().__init__(
            [
                help_,
                form,
                w.HBox([self.run_button, self.cancel_button, self.progress]),
                self.status,
                self.chart,
                self.table,
                self.untrained,
            ]
        )
        self._on_families()

    def _on_families(self, _change: Any = None) -> None:
        arch = ARCHITECTURE in self.families.value
        self.architecture_box.layout.display = None if arch else "none"
        self.trials.description = "students to train" if arch else "recipes to try"

    def space(self) -> SearchSpace | ArchitectureSpace:
        """The search space the boxes describe (a SearchSpaceError when "architecture" is mixed with others)."""
        fams = list(self.families.value)
        if ARCHITECTURE not in fams:
            return SearchSpace.default(fams)
        return SearchSpace.default(
            fams,
            architecture__time_budget_s=60.0 * float(self.time_budget.value),
            architecture__train_steps=int(self.train_steps.value),
        )

    # ---- actions --------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        if self._future is not None and not self._future.done():
            return True
        return self._thread is not None and self._thread.is_alive()

    def add_trial_listener(self, fn: Callable[[TrialRecord], None]) -> None:
        """Also call ``fn(record)`` after each finished trial has been drawn (on the search's thread)."""
        self._trial_listeners.append(fn)

    def add_screen_listener(self, fn: Callable[[dict], None]) -> None:
        """Also call ``fn(row)`` after each architecture timed untrained has been drawn (architecture search,
        on the search's thread)."""
        self._screen_listeners.append(fn)

    def add_done_listener(self, fn: Callable[[SearchResult | None], None]) -> None:
        """Also call ``fn(result)`` when a search ends (None when it was cancelled or failed)."""
        self._done_listeners.append(fn)

    def set_unavailable(self, reason: str | None) -> None:
        """Disable Search with ``reason`` shown (None: enable it again)."""
        self.run_button.disabled = reason is not None or self.running
        if reason is not None:
            self._show(reason, "warn")
        elif not self.running:
            self.status.value = ""
        self._unavailable = reason

    def budget(self) -> Budget:
        if self._budget_fn is not None:
            return self._budget_fn()
        drop = _limit(self.max_drop.value)
        return Budget(
            max_latency_ms=_limit(self.max_latency.value),
            max_size_mb=_limit(self.max_size.value),
            max_accuracy_drop=None if drop is None else drop / 100,
        )

    def run(self, wait: bool = False) -> None:
        """Start the search on a background thread (``wait=True`` blocks until it ends: scripts, tests)."""
        if self.running:
            return
        if self._unavailable:
            self._show(self._unavailable, "warn")
            return
        if self.worker is not None and self.worker.busy:
            self._show(f"Busy ({self.worker.label}): press Search again when it has finished.", "warn")
            return
        try:
            budget = self.budget()
            space = self.space()
        except WorkbenchError as e:
            self._show(str(e), "error")
            return
        self.records, self.screened, self.result, self.redraws = [], [], None, 0
        self._baseline, self._n_archs = None, 0
        self._screening = isinstance(space, ArchitectureSpace)
        self.progress.value = 0
        self.progress.max = 1 if self._screening else int(self.trials.value)
        self.progress.description = "screening" if self._screening else "trials"
        self._ctx = RunContext()
        self.run_button.disabled, self.cancel_button.disabled = True, False
        if isinstance(space, ArchitectureSpace):
            m = self.model  # the dashboard's model is loaded on its worker: named once it is
            name = m if isinstance(m, str) else m.name if isinstance(m, LoadedModel) else None
            self._show(
                f"Searching architectures{f' of {name}' if name else ''} under {budget.describe()} within "
                f"{space.time_budget_s / 60:g} min: timing each one untrained first…",
                "info",
            )
        else:
            self._show(f"Searching {space.size} recipes under {budget.describe()}…", "info")
        self.chart.value, self.table.value, self.untrained.value = "", "", ""
        if self.worker is not None:
            self._future = self.worker.submit("searching", self._work, budget, space)
            if wait:
                self._future.result()
            return
        self._thread = threading.Thread(target=self._work, args=(budget, space), daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()

    def cancel(self) -> None:
        if self._ctx is not None:
            self._ctx.cancel()
            self._show("Cancelling after the current step…", "warn")

    def wait(self, timeout: float | None = None) -> None:
        if self._future is not None:
            self._future.result(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _resolve_model(self) -> LoadedModel | str:
        model = self.model() if callable(self.model) else self.model
        if isinstance(model, str):
            model = load_model(model, **self.load_kw)
        if model.task.name == CausalLM.name:
            raise WorkbenchError(
                f"{model.name} is a causal language model: the search space holds classifier and encoder "
                "recipes. Compare the lm-* recipes with Run instead."
            )
        return model

    def _work(self, budget: Budget, space: SearchSpace | ArchitectureSpace) -> None:
        self._budget_used = budget
        arch = isinstance(space, ArchitectureSpace)
        try:
            model = self._resolve_model()
            # the dashboard's bench settings carry its threads; standalone, this panel's own box does
            bench = (
                self.bench()
                if callable(self.bench)
                else replace(self.bench or BenchConfig(), threads=int(self.threads.value))
            )
            if arch:
                self._n_archs = len(space.points(model))
                self.progress.max = max(1, self._n_archs)
                # the search measures (or reuses) this same baseline first: drawn beside the untrained ticks
                self._baseline = run_baseline(model, store=self.store, bench=bench, ctx=self._ctx)
                self._show(
                    f"Searching architectures of {model.name} under {budget.describe()} within "
                    f"{space.time_budget_s / 60:g} min: timing {self._n_archs} untrained…",
                    "info",
                )
            extra = {"on_screen": self._on_screen} if arch else {}
            self.result = search(
                model,
                budget,
                space,
                trials=int(self.trials.value),
                store=self.store,
                executor=self.executor.value,
                address=self.address.value.strip() or None,
                bench=bench,
                ctx=self._ctx,
                on_trial=self._on_trial,
                **extra,
                **self.load_kw,
            )
            if arch:  # every architecture with its fate (those timed by an earlier search included)
                self.screened = list(self.result.screened)
                self.progress.value = self.progress.max
            ok = self.result.best is not None
            self._show(self.result.explain(), "ok" if ok else "warn")
            self._draw(budget, self.result.best.id if ok else None)
        except CancelledError:
            if self._screening:
                self._show(
                    f"Cancelled while timing architectures untrained: {len(self.screened)} timed, kept for the "
                    "next search (Search times only the rest).",
                    "warn",
                )
            else:
                what = "student(s)" if arch else "trial(s)"
                self._show(
                    f"Cancelled: {len(self.records)} {what} kept in the run store; Search resumes the study.", "warn"
                )
        except WorkbenchError as e:
            self._show(str(e), "error")
        except Exception as e:  # the panel must survive anything and say what happened
            self._show(f"Unexpected error: {type(e).__name__}: {e}", "error")
        finally:
            self.run_button.disabled, self.cancel_button.disabled = False, True
        for fn in self._done_listeners:
            fn(self.result)

    def _on_screen(self, row: dict) -> None:
        """One architecture timed untrained (on the search's thread): its row, its tick on the chart."""
        self.screened = [r for r in self.screened if r.get("label") != row.get("label")] + [row]
        self.progress.value = min(self.progress.max, len(self.screened))
        self._draw(self._budget_used, None)
        if "error" in row:
            said = f"could not be built: {row['error']}"
        else:
            said = f"{_num(_untrained_p50(row))} ms untrained"
            if row.get("speedup"):
                said += f", {row['speedup']:.2f}x the baseline"
        # (those an interrupted search timed are heard again first, not timed again)
        self._show(f"untrained {len(self.screened)}/{self.progress.max}: {row.get('label')} — {said}", "info")
        for fn in self._screen_listeners:
            fn(row)

    def _on_trial(self, rec: TrialRecord) -> None:
        if self._screening:  # the screening is over: the bar now counts the students trained
            self._screening = False
            self.progress.value = 0
            self.progress.max, self.progress.description = int(self.trials.value), "trials"
        self.records.append(rec)
        self.progress.value = min(self.progress.max, len(self.records))
        self._draw(self._budget_used, None)
        self._show(f"trial {len(self.records)}/{self.progress.max}: {rec.recipe.name} — {rec.verdict}", "info")
        for fn in self._trial_listeners:
            fn(rec)

    # ---- drawing --------------------------------------------------------------------------------------
    def _draw(self, budget: Budget, best_id: str | None) -> None:
        cands = [r.candidate for r in self.records if r.candidate is not None]
        base = self.result.baseline if self.result else self._baseline
        if base is None:
            base = (
                next(
                    (
                        c
                        for c in self.store.candidates(cands[0].model if cands else None)
                        if c.recipe_name == "baseline"
                    ),
                    None,
                )
                if cands
                else None
            )
        pool = {c.id: c for c in ([base] if base else []) + cands}
        fits = [r.candidate.id for r in self.records if r.fits]
        self.tradeoff = tradeoff_chart(list(pool.values()), budget, selected=[best_id] if best_id else fits)
        if self.screened:
            self.tradeoff.layer.append(self._untrained_layer())
        self.chart.value = to_svg(self.tradeoff)
        self.redraws += 1
        rows = "".join(
            f"<tr><td>{r.number}</td><td>{html.escape(r.recipe.name)}</td><td>{_p50(r)}</td>"
            f"<td>{html.escape(r.verdict)}</td></tr>"
            for r in self.records
        )
        self.table.value = (
            "<table class='wb-search-trials'><tr><th>trial</th><th>recipe</th><th>p50 ms</th>"
            f"<th>verdict</th></tr>{rows}</table>"
        )
        self.untrained.value = self._untrained_table() if self.screened else ""

    def _untrained_layer(self) -> Any:
        """The architectures timed untrained as ticks along the latency axis (they have no accuracy yet)."""
        import altair as alt

        values = [
            {"x": _untrained_p50(r), "label": r.get("label", ""), "fate": _fate(r), "speedup": r.get("speedup")}
            for r in self.screened
            if _untrained_p50(r) is not None
        ]
        return (
            alt.Chart(alt.Data(values=values), description="untrained")
            .mark_tick(color="#9467bd", thickness=2, size=12, opacity=0.8)
            .encode(
                x=alt.X("x:Q"),
                y=alt.YValue("height"),
                tooltip=[
                    alt.Tooltip("label:N", title="untrained architecture"),
                    alt.Tooltip("x:Q", title="untrained p50 (ms)", format=".3g"),
                    alt.Tooltip("speedup:Q", title="x baseline", format=".2f"),
                    alt.Tooltip("fate:N", title="fate"),
                ],
            )
        )

    def _untrained_table(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(r.get('label', '')))}</td>"
            f"<td>{_num(_untrained_p50(r))}{' (noisy)' if r.get('noisy') else ''}</td>"
            f"<td>{_num(r.get('speedup'), '.2f')}</td>"
            f"<td>{_num(r['size_bytes'] / 1e6 if r.get('size_bytes') is not None else None)}</td>"
            f"<td>{html.escape(_fate(r))}</td></tr>"
            for r in self.screened
        )
        return (
            "<div style='margin-top:8px'><b>Architectures timed untrained</b> (ticks under the chart's latency "
            "axis)</div><table class='wb-search-untrained'><tr><th>architecture</th><th>untrained p50 ms</th>"
            f"<th>x baseline</th><th>size MB</th><th>fate</th></tr>{rows}</table>"
        )

    def _show(self, text: str, kind: str) -> None:
        color = {"info": "#333", "ok": "#2e7d32", "warn": "#b26a00", "error": "#c62828"}[kind]
        self.status.value = (
            f'<div class="wb-{kind}" style="color:{color}">{html.escape(text).replace(chr(10), "<br>")}</div>'
        )
