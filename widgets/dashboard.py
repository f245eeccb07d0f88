"""Workbench: every panel in one dashboard, one line in a notebook.

>>> from widgets import Workbench
>>> Workbench("digits-cnn")          # doctest: +SKIP

Long work (loading a model, a run, a search, a report) goes to ONE worker thread, so the kernel keeps
receiving clicks (Cancel) while it runs; results stream into the charts as each candidate is
recorded. Moving a setting back to one already measured shows it from the run store at once.

Two modes share the model, the run store and the budget: *Run one setting* (the precision slider, pruning,
distillation) and *Search* (``SearchPanel``: Optuna tries recipes under the budget and draws the Pareto
front as each trial lands). A causal LM swaps the slider for its ``lm-*`` recipes, the budget for
tokens/s and perplexity limits, and the chart for perplexity against tokens/s.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench import BenchConfig, CancelledError, Candidate, LoadedModel, RunContext, RunStore, WorkbenchError
from workbench.core.context import ProgressEvent
from workbench.lm.task import CausalLM
from workbench.optimize import find_candidate, run_baseline, run_recipe, scored_on
from workbench.recipes.compose import build_recipe
from workbench.recipes.registry import Recipe
from workbench.remeasure import careful_bench, noisy_ids, remeasure
from workbench.tasks import task_of
from workbench.tasks.budget import Budget, violations

from ._common import Message, Worker, replace_output
from .budget_panel import BudgetPanel
from .lm_settings import LMRecipePanel
from .model import ModelPicker
from .results import ResultsPanel
from .run import RunPanel
from .search_panel import SearchPanel
from .settings import DistillationPanel, PruningPanel, QuantizationPanel

__all__ = ["Workbench", "LM_TASK", "TAB_TITLES"]

#: the task name of causal language models (``workbench.lm``)
LM_TASK = CausalLM.name
#: the two modes, as tab titles
TAB_TITLES = ("Run one setting", "Search")
_LM_SEARCH = (
    "Search covers classifier and encoder recipes; for a causal language model compare the lm-* recipes "
    "in the 'Run one setting' tab."
)


class Workbench(w.VBox):
    """Model picker, quantization / pruning / distillation settings, budget, Run, live results; a Search tab.

    ``store`` is a RunStore or a path (None = ``$WORKBENCH_STORE`` or ``./.workbench/runs.sqlite``);
    ``bench`` sets the latency protocol (warm-ups, runs); ``threads`` the starting thread count.
    ``data`` / ``eval_data`` / ``task`` / ``data_options`` pre-fill the picker's data field: the model is scored
    on your data (``load_model``'s keywords of the same names; None = the model's bundled data).
    """

    def __init__(
        self,
        model: str | LoadedModel = "digits-cnn",
        *,
        store: RunStore | str | os.PathLike | None = None,
        threads: int | None = None,
        bench: BenchConfig | None = None,
        budget: Budget | None = None,
        precision: str = "fp32",
        renderer: str = "jupyter",
        n_eval: int | None = None,
        report_dir: str | os.PathLike = "reports",
        autoload: bool = True,
        data: str | os.PathLike | None = None,
        eval_data: str | os.PathLike | None = None,
        task: str | None = None,
        data_options: Mapping[str, Any] | None = None,
    ):
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.bench = bench or BenchConfig()
        self.report_dir = Path(report_dir)
        self.worker = Worker()
        self.picker = ModelPicker(
            model,
            worker=self.worker,
            n_eval=n_eval,
            autoload=False,
            store=self.store,
            data=data,
            eval_data=eval_data,
            task=task,
            data_options=data_options,
        )
        self.quantization = QuantizationPanel(precision)
        self.pruning = PruningPanel()
        self.distillation = DistillationPanel()
        self.budget = BudgetPanel(budget, threads or self.bench.threads)
        self.lm_recipes = LMRecipePanel()
        self.run_panel = RunPanel()
        self.results = ResultsPanel(renderer)
        # the search mode: the dashboard's model (loaded on the worker), store, budget, bench and worker
        self.search = SearchPanel(
            self._search_model, self.store, bench=self.bench_config, budget=self.budget.budget, worker=self.worker
        )
        self.lookup = Message()  # "already measured" / "not measured yet" for the current settings
        self.settings_error = Message()
        self.runs_started = 0
        self.lm_mode: bool | None = None  # set by _sync_mode from the chosen model's task
        self._run_future: Any = None
        self._ctx: RunContext | None = None
        self._listeners: list[Callable[[ProgressEvent], None]] = []

        self.extra = w.Accordion(children=[self.pruning, self.distillation])
        self.extra.set_title(0, "Pruning")
        self.extra.set_title(1, "Distillation")
        left = w.VBox(
            [self.picker, self.quantization, self.lm_recipes, self.lookup, self.settings_error],
            layout=w.Layout(width="560px"),
        )
        self.modes = w.Tab(children=[w.VBox([self.extra, self.run_panel, self.results]), self.search])
        for i, title in enumerate(TAB_TITLES):
            self.modes.set_title(i, title)
        super().__init__(
            [
                w.HTML("<h3 style='margin:4px 0'>Workbench: make the model fit the device</h3>"),
                w.HBox([left, self.budget]),
                self.modes,
            ]
        )

        self.run_panel.on_run(self.run)
        self.run_panel.on_cancel(self.cancel)
        self.run_panel.on_report(self.export_report)
        self.run_panel.on_retime(self.retime)
        for c in (
            *self.quantization.controls,
            *self.pruning.controls,
            *self.distillation.controls,
            *self.lm_recipes.controls,
            self.budget.threads,
        ):
            c.observe(self._on_settings, names="value")
        for c in self.budget.limits:
            c.observe(self._on_budget, names="value")
        self.picker.bundled.observe(self._on_model, names="value")
        self.picker.custom.observe(self._on_model, names="value")
        for c in self.picker.data_panel.controls:  # another data set: another model, other candidates
            c.observe(self._on_settings, names="value")
        self.picker.on_loaded(lambda _m: self._on_settings())  # on the worker: redraw + say if measured
        # every finished trial also lands in the results of the run tab, and the search ends with a redraw
        self.search.add_trial_listener(lambda _rec: self.refresh())
        self.search.add_done_listener(lambda _res: self.refresh())
        self.refresh()
        if autoload and self.picker.name and self.picker.bundled.value != "__other__":
            self.picker.load()
        self.picker.autoload = autoload

    # ---- settings -> recipe, budget, bench ------------------------------------------------------
    def recipe(self) -> Recipe | None:
        """The recipe of the current settings (None = the FP32 baseline). Raises WorkbenchError."""
        if self.is_lm:
            return self.lm_recipes.recipe()
        return build_recipe(
            **self.quantization.settings(), prune=self.pruning.settings(), distill=self.distillation.settings()
        )

    @property
    def is_lm(self) -> bool:
        """Whether the chosen model is a causal LM (known once loaded, or from the registry for bundled ones)."""
        return self.picker.task == LM_TASK

    def _search_model(self) -> LoadedModel:
        """The search tab's model: the one picked here, loaded once (called on the worker thread)."""
        return self.picker.ensure_loaded(self.picker.check())

    def _sync_mode(self) -> None:
        """Show the settings, budget, chart axes and search state that fit the chosen model's task."""
        lm = self.is_lm
        if lm == self.lm_mode:
            return
        self.lm_mode = lm
        self.quantization.layout.display = "none" if lm else ""
        self.extra.layout.display = "none" if lm else ""
        self.lm_recipes.layout.display = "" if lm else "none"
        self.budget.set_lm(lm)
        self.results.set_axes(*(("tokens_per_s", "perplexity") if lm else ("p50_ms", None)))
        self.search.set_unavailable(_LM_SEARCH if lm else None)

    def bench_config(self) -> BenchConfig:
        return replace(self.bench, threads=self.budget.threads.value)

    def add_progress_listener(self, fn: Callable[[ProgressEvent], None]) -> None:
        """Also call ``fn(event)`` on every progress event of later runs (on the worker thread)."""
        self._listeners.append(fn)

    @property
    def running(self) -> bool:
        return self._run_future is not None and not self._run_future.done()

    # ---- cached lookups ---------------------------------------------------------------------------
    def find_cached(self) -> Candidate | None:
        """The candidate the run store already holds for the current settings (None if not measured or
        the model is not loaded yet)."""
        model = self.picker.model
        if model is None:
            return None
        recipe = self.recipe()
        bench = self.bench_config()
        return find_candidate(self.store, model, recipe, bench)

    def refresh(self, current: str | None = None) -> Candidate | None:
        """Redraw the results for the chosen model from the store; highlight the cached candidate of the
        current settings (or ``current``). Safe to call from the worker thread."""
        self._sync_mode()
        try:
            budget = self.budget.budget()
        except WorkbenchError:
            budget = None  # the budget panel shows its own error; draw without limits meanwhile
        hit = None
        try:
            hit = self.find_cached()
        except WorkbenchError as e:
            self.settings_error.show(str(e), "error")
        cands = self.candidates()
        self.results.show(cands, budget, current=current or (hit.id if hit else None))
        base = [c for c in cands if c.recipe_name == "baseline" and c.ok]
        if base:
            self.picker.show_baseline(base[-1])
        return hit

    def candidates(self, include_intermediate: bool = False) -> list[Candidate]:
        """The chosen model's candidates on the chosen data: those whose baseline (the root of their lineage)
        was scored on the loaded model's data set (its sha256); before it loads, on the data path typed."""
        model = self.picker.model
        name = model.name if model is not None else self.picker.name  # an .onnx path records its stem
        if not name:
            return []
        kept = scored_on(self.store.candidates(name), model, self.picker.chosen_data() if model is None else None)
        return kept if include_intermediate else [c for c in kept if c.status != "intermediate"]

    def _on_settings(self, _change: Any = None) -> None:
        try:
            recipe = self.recipe()
        except WorkbenchError as e:
            self.settings_error.show(str(e), "error")
            self.lookup.clear()
            return
        self.settings_error.clear()
        hit = self.refresh()
        # the message names the settings: the page shows which ones the kernel has (a click can overtake them)
        label = recipe.name if recipe is not None else "the FP32 baseline"
        if self.picker.model is None:
            self.lookup.show(f"Press Run to load {self.picker.name or 'the model'} and measure {label}.", "info")
        elif hit is not None:
            self.lookup.show(
                f"Already measured ({hit.recipe_name}, {hit.id}): shown from the run store, no rerun. " + _summary(hit),
                "ok",
            )
        else:
            self.lookup.show(f"Not measured yet: press Run to measure {label}.", "info")

    def _on_budget(self, _change: Any = None) -> None:
        try:
            self.budget.budget()
        except WorkbenchError:
            return  # the budget panel shows the message; keep the last good chart
        self.refresh(self.results.current)

    def _on_model(self, _change: Any = None) -> None:
        self.lookup.clear()
        self.refresh()

    # ---- run / cancel -----------------------------------------------------------------------------
    def run(self):
        """Measure the current settings on the worker thread; returns the Future (None if refused)."""
        panel = self.run_panel
        if self.running:
            panel.error.show("A run is already in progress: wait for it to finish, or press Cancel.", "warn")
            return None
        if self.search.running:
            panel.error.show("A search is running: wait for it, or press Cancel in the Search tab.", "warn")
            return None
        try:
            name = self.picker.check()
            data = self.picker.data_settings()
            recipe = self.recipe()
            budget = self.budget.budget()
        except WorkbenchError as e:
            panel.error.show(str(e), "error")
            return None
        bench = self.bench_config()
        ctx = RunContext(on_progress=panel.on_progress)
        for fn in self._listeners:
            ctx.add_listener(fn)
        self._ctx = ctx
        self.runs_started += 1
        label = recipe.name if recipe else "fp32 baseline"
        panel.started(f"starting {label}…")
        panel.status.show(f"Running {label} on {name}…", "info")
        self._run_future = self.worker.submit(
            f"running {label}", self._run_job, name, recipe, budget, bench, ctx, self.is_lm, data
        )
        return self._run_future

    def _remember_data(self, model: LoadedModel) -> None:
        """Keep the data set the model was scored on in the store's recent list: the data box offers it again."""
        try:
            self.store.remember_dataset(model.info.get("dataset") or {})
        except WorkbenchError:
            return  # a store that cannot take it loses a suggestion, not the run
        self.picker.refresh_recent()

    def cancel(self) -> bool:
        """Ask the running job to stop at its next step. False (and a message) when nothing runs."""
        if not self.running or self._ctx is None:
            self.run_panel.status.show("Nothing to cancel: no run in progress.", "warn")
            return False
        self._ctx.cancel()
        self.run_panel.status.show("Cancelling: the run stops at the next step…", "warn")
        return True

    def wait(self, timeout: float | None = 600) -> Any:
        """Block until the worker is idle (scripts and tests); returns the last job's result."""
        return self.worker.wait(timeout)

    def _run_job(
        self,
        name: str,
        recipe: Recipe | None,
        budget: Budget,
        bench: BenchConfig,
        ctx: RunContext,
        lm: bool,
        data: dict[str, Any] | None = None,
    ) -> Candidate | None:
        panel = self.run_panel
        try:
            model = self.picker.ensure_loaded(name, data)  # cached per model AND data
            base = run_baseline(model, store=self.store, bench=bench, ctx=ctx)
            self._remember_data(model)
            self.refresh(current=base.id)  # streams in: the baseline shows before the recipe runs
            if recipe is not None and (model.task.name == LM_TASK) != lm:
                # an id or path whose task was unknown until it loaded: its settings were the other kind's
                kind = (
                    "a causal language model: choose an LM recipe"
                    if not lm
                    else "not a causal language model: choose a precision"
                )
                panel.finished("warning")
                panel.status.show(
                    f"Measured the FP32 baseline only: {name} is {kind}, then press Run again. " + _summary(base),
                    "warn",
                )
                return base
            cand = (
                base
                if recipe is None
                else run_recipe(model, recipe, store=self.store, baseline=base, bench=bench, ctx=ctx)
            )
            self.refresh(current=cand.id)
        except CancelledError as e:
            panel.finished("warning")
            panel.status.show(f"Cancelled ({e}). Recorded in the run store as cancelled.", "warn")
            self.refresh()
            return None
        except WorkbenchError as e:
            panel.finished("danger")
            panel.error.show(f"{type(e).__name__}: {e}", "error")
            panel.status.clear()
            return None
        except Exception as e:  # the panel must survive anything and say what happened
            panel.finished("danger")
            panel.error.show(f"Unexpected error: {type(e).__name__}: {e}", "error")
            panel.status.clear()
            return None
        if cand.status == "failed":
            panel.finished("danger")
            panel.error.show(f"The run failed: {cand.error}", "error")
            panel.status.show(f"{cand.recipe_name} is recorded as failed ({cand.id}).", "warn")
        else:
            panel.finished("success" if cand.status == "ok" else "warning")
            verdict = violations(cand, budget)
            fit = "fits the budget" if not verdict else "breaks the budget: " + "; ".join(map(str, verdict))
            kind = "ok" if cand.status == "ok" and not verdict else "warn"
            degraded = f" Flagged: {cand.error}." if cand.status == "degraded" else ""
            panel.status.show(f"Done: {cand.recipe_name} — {_summary(cand)} — {fit}.{degraded}", kind)
            self.lookup.show(f"Measured just now ({cand.id}).", "ok")
        return cand

    # ---- re-timing ---------------------------------------------------------------------------------
    def retime(self, ids: list[str] | None = None):
        """Re-time candidates beside their baseline on the worker thread (``workbench remeasure``): ``ids``, else
        those selected under Compare, else every noisy one shown. Returns the Future (None if refused)."""
        panel = self.run_panel
        if self.running or self.search.running:
            panel.error.show("A run or a search is in progress: re-time when it has finished.", "warn")
            return None
        shown = {c.id: c for c in self.results.candidates}
        ids = list(ids or self.results.compare.value or noisy_ids(shown.values()))
        ids = [i for i in ids if i in shown and shown[i].ok and shown[i].notes.get("measured_on") != "device"]
        if not ids:
            panel.status.show(
                "Nothing to re-time: no latency is marked noisy. Select candidates under Compare to re-time them.",
                "info",
            )
            return None
        ctx = RunContext(on_progress=panel.on_progress)
        self._ctx = ctx
        panel.started(f"re-timing {len(ids)} candidate(s)…")
        bench = careful_bench(base=self.bench_config())  # the careful timing: more calls, more rounds
        self._run_future = self.worker.submit("re-timing", self._retime_job, ids, bench, ctx)
        return self._run_future

    def _retime_job(self, ids: list[str], bench: BenchConfig, ctx: RunContext) -> Any:
        panel = self.run_panel
        try:
            done = remeasure(ids, store=self.store, model=self.picker.model, bench=bench, ctx=ctx)
        except CancelledError as e:
            panel.finished("warning")
            panel.status.show(f"Re-timing cancelled ({e}); the timings recorded so far are kept.", "warn")
            return None
        except Exception as e:
            panel.finished("danger")
            panel.error.show(f"Re-timing failed: {type(e).__name__}: {e}", "error")
            return None
        self.refresh(self.results.current)
        still = [r.candidate.id for r in done if r.candidate.get("noisy")]
        parts = [
            f"{r.candidate.recipe_name} p50 {r.before['p50_ms']:.3g} -> {r.candidate.get('p50_ms'):.3g} ms"
            for r in done
        ]
        panel.finished("success" if not still else "warning")
        panel.status.show(
            "Re-timed: "
            + "; ".join(parts)
            + (f". Still noisy: {', '.join(still)} (the machine is busy: try again later)." if still else "."),
            "ok" if not still else "warn",
        )
        return done

    # ---- report -----------------------------------------------------------------------------------
    def export_report(self):
        """Write an HTML report of this model's candidates on the worker thread; shows a link to it."""
        panel = self.run_panel
        try:
            from workbench.report.notebook import run_report, template_parameters
        except ImportError:
            panel.error.show(
                "Export report is not available in this version of the workbench (no workbench.report module).", "warn"
            )
            return None
        if self.running or self.search.running:
            panel.error.show("A run or a search is in progress: export the report when it has finished.", "warn")
            return None
        try:
            name = self.picker.check()
            data = self.picker.data_settings()
            budget = self.budget.budget()
        except WorkbenchError as e:
            panel.error.show(str(e), "error")
            return None
        measured = [c for c in self.candidates() if c.ok and c.recipe.get("steps")]
        folder = self.report_dir / re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
        recipe_files = []
        for c in measured:  # the panel's recipes are not registered names: hand them over as files
            path = folder / "recipes" / f"{c.key}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({k: c.recipe[k] for k in ("name", "description", "steps") if k in c.recipe}))
            recipe_files.append(str(path.resolve()))
        bench = self.bench_config()
        model = self.picker.model
        lm_spec = getattr(model.task, "spec", None) if model is not None and model.task.name == LM_TASK else None
        wanted = {
            "recipes": recipe_files,
            "max_latency_ms": budget.max_latency_ms,
            "max_size_mb": budget.max_size_mb,
            "max_accuracy_drop": budget.max_accuracy_drop,
            "min_tokens_per_s": budget.min_tokens_per_s,
            "max_perplexity_increase": budget.max_perplexity_increase,
            "threads": bench.threads,
            "n_eval": lm_spec.n_docs if lm_spec is not None else self.picker.n_eval,
            # the LM's eval protocol as loaded here: the report then finds these candidates in the store
            "load_options": {k: v for k, v in lm_spec.to_dict().items() if k != "n_docs"} if lm_spec else {},
            # the data the model is scored on here: the report loads it on the same data
            "data": data.get("data"),
            "eval_data": data.get("eval_data"),
            "task": data.get("task"),
            "data_options": {k: v for k, v in data.items() if k not in ("data", "eval_data", "task")},
            "bench_warmup": bench.warmup,
            "bench_runs": bench.runs,
            "store": str(Path(str(self.store.path)).resolve()) if self.store.path != ":memory:" else None,
        }
        spec = template_parameters()
        params = {k: v for k, v in wanted.items() if k in spec}
        out = folder / "report.html"
        panel.status.show(f"Writing the report for {name}…", "info")
        return self.worker.submit("writing a report", self._report_job, run_report, name, params, out)

    def _report_job(self, run_report: Callable[..., Any], name: str, params: dict, out: Path) -> Any:
        panel = self.run_panel
        try:
            res = run_report(name, params, out)
        except Exception as e:
            panel.error.show(f"The report could not be written: {type(e).__name__}: {e}", "error")
            panel.status.clear()
            return None
        from IPython.display import FileLink

        link = os.path.relpath(res.html_path, Path.cwd())

        replace_output(panel.report_out, FileLink(link, result_html_prefix="Report: "))
        if res.ok:
            panel.status.show(f"Report written: {link}", "ok")
        else:
            panel.error.show(f"The report was written but a cell failed: {res.error} ({res.failed_cell})", "error")
        return res

    def close(self) -> None:
        self.worker.shutdown()
        super().close()


def _summary(c: Candidate) -> str:
    return task_of(c).describe(c)
