"""Headless panel tests: set widget values, ``.click()``, assert traits, chart data and the run store.

Runs are real (digits-cnn through ONNX Runtime on the worker thread). Where a test must act while a run
is in flight (Cancel, Run pressed twice), a progress listener holds the worker at a known step until the
test has clicked: events, not sleeps.
"""

from __future__ import annotations

import importlib
import threading

import pytest

from widgets import (
    BudgetPanel,
    DistillationPanel,
    ModelPicker,
    PruningPanel,
    QuantizationPanel,
    ResultsPanel,
    Workbench,
)
from workbench import from_module
from workbench.data.splits import TaskData
from workbench.recipes.compose import build_recipe, optional_pass


class Gate:
    """A progress listener that parks the worker at the first event whose stage contains ``part``."""

    def __init__(self, part: str):
        self.part, self.reached, self.release = part, threading.Event(), threading.Event()

    def __call__(self, ev) -> None:
        if self.part in ev.stage and not self.reached.is_set():
            self.reached.set()
            self.release.wait(60)


def points(wb: Workbench) -> dict[str, dict]:
    """The tradeoff chart's points by recipe name, from the spec the front end receives."""
    spec = wb.results.tradeoff.to_dict()
    (layer,) = [lay for lay in spec["layer"] if lay.get("description") == "candidates"]
    return {r["recipe"]: r for r in layer["data"]["values"]}


@pytest.fixture
def wb(digits_model, fast_bench, store):
    bench = Workbench(digits_model, store=store, bench=fast_bench, threads=1)
    bench.wait()
    yield bench
    bench.close()


# ---- single panels ------------------------------------------------------------------------------
def test_quantization_options_follow_the_step():
    q = QuantizationPanel()
    shown = lambda: {
        name
        for name, box in [
            ("per_channel", q._per_channel_box),
            ("calibration", q._calibration_box),
            ("samples", q._samples_box),
            ("block", q._block_box),
        ]
        if box.layout.display != "none"
    }
    assert shown() == set() and build_recipe(**q.settings()) is None
    q.precision.value = "int8-static"
    q.calibration.value = "entropy"
    q.samples.value = 32
    assert shown() == {"per_channel", "calibration", "samples"}
    assert "calibration samples" in q.step_help.value
    steps = build_recipe(**q.settings()).steps
    assert (steps[-1].kind, steps[-1].calibration, steps[-1].samples) == ("static-int8", "entropy", 32)
    q.precision.value = "int4"
    q.block_size.value = 64
    assert shown() == {"block"} and build_recipe(**q.settings()).steps[-1].block_size == 64
    assert q.precision.options[-1] == ("INT4", "int4") and q.precision.tooltip


@pytest.mark.parametrize(
    ("box", "text", "needle"),
    [
        ("max_ms", "-5", "'Max latency (ms)' box must be a number > 0"),
        ("max_ms", "fast", "must be a number like 5 or 0.5"),
        ("max_mb", "0", "'Max size (MB)' box must be a number > 0"),
        ("max_drop", "150", "number of points in [0, 100]"),
        ("max_drop", "-1", "'Max accuracy drop' box must be a number >= 0"),
    ],
    ids=["negative-ms", "non-numeric-ms", "zero-mb", "drop-over-100", "negative-drop"],
)
def test_budget_bad_input_is_shown(box, text, needle):
    b = BudgetPanel()
    getattr(b, box).value = text
    assert needle in b.error.text and b.error.kind == "error"
    assert repr(text) in b.error.text  # the message quotes what was typed
    getattr(b, box).value = ""  # empty = no limit: the error goes away
    assert b.error.text == "" and b.budget().describe() == "no limits"


def test_budget_values_become_a_budget():
    b = BudgetPanel(threads=1)
    b.max_ms.value, b.max_mb.value, b.max_drop.value = "2.5", "0,5", "1"
    budget = b.budget()
    assert (budget.max_latency_ms, budget.max_size_mb, budget.max_accuracy_drop, b.threads.value) == (2.5, 0.5, 0.01, 1)


@pytest.mark.parametrize("panel_cls", [PruningPanel, DistillationPanel], ids=["pruning", "distillation"])
def test_optional_panels_are_on_with_the_passes_that_ship(panel_cls):
    # pruning and distillation ship with the workbench: their passes are registered, the panels usable
    assert all(optional_pass(k) is not None for k in panel_cls.kinds)
    panel = panel_cls()
    assert panel.available is True and "not available" not in panel.note.text
    # off until enabled: only the checkbox is live, and there is nothing to build yet
    assert not panel.enabled.disabled and all(c.disabled for c in panel.controls if c is not panel.enabled)
    assert panel.settings() is None
    panel.enabled.value = True
    assert not any(c.disabled for c in panel.controls)
    recipe = build_recipe("fp32", **{"prune" if panel_cls is PruningPanel else "distill": panel.settings()})
    assert recipe.steps[0].kind in panel_cls.kinds


@pytest.mark.parametrize("panel_cls", [PruningPanel, DistillationPanel], ids=["pruning", "distillation"])
def test_optional_panel_without_its_pass_is_off_and_says_why(panel_cls, monkeypatch):
    # a version without the pass (as the panel sees it through optional_pass): no faking, the controls
    # stay off whatever is clicked and the panel says why
    monkeypatch.setattr(importlib.import_module("widgets.settings"), "optional_pass", lambda kind: None)
    panel = panel_cls()
    assert panel.available is False
    assert "not available in this version" in panel.note.text
    panel.enabled.value = True
    assert all(c.disabled for c in panel.controls)
    assert panel.settings() is None


def test_results_panel_svg_renderer_draws_points(digits_model, store, fast_bench):
    from workbench import optimize

    cands = optimize(digits_model, ["bf16"], store=store, bench=fast_bench)
    panel = ResultsPanel(renderer="svg")
    panel.show(cands, current=cands[1].id)
    (out,) = panel.chart_widgets[0].outputs
    svg = out["data"]["image/svg+xml"]
    assert "recipe: bf16" in svg and "role: selected" in svg and "recipe: baseline" in svg
    assert "bf16" in panel.table.value
    panel.compare.value = (cands[0].id, cands[1].id)  # select two: side by side
    assert "wb-compare" in panel.compare_view.value and "b - a" in panel.compare_view.value
    assert panel.highlighted == [cands[0].id, cands[1].id]


def test_model_picker_bad_ids_are_shown(digits_model):
    picker = ModelPicker(digits_model, autoload=False)
    picker.bundled.value = "__other__"
    picker.custom.value = "   "
    assert picker.load() is None and "No model given" in picker.error.text
    picker.custom.value = "not a model!!"
    assert picker.load() is None and "is not a model id" in picker.error.text
    picker.custom.value = "no-such-model"
    picker.load().result(60)
    assert "Unknown model 'no-such-model'" in picker.error.text and "digits-cnn" in picker.error.text
    picker.custom.value = "some-org/not-cached-model"  # HF_HUB_OFFLINE=1 in the tests
    picker.load().result(60)
    assert "unreachable (offline)" in picker.error.text and picker.error.kind == "error"
    picker.bundled.value = "digits-cnn"  # the panel still works afterwards
    assert picker.model is digits_model and "classification" in picker.info.value


# ---- the dashboard ----------------------------------------------------------------------------------
def test_run_streams_results_and_reuses_cached_settings(wb, store):
    seen_before_recipe: list[list[str]] = []
    wb.add_progress_listener(
        lambda ev: (
            "int8-dynamic" in ev.stage
            and not seen_before_recipe
            and seen_before_recipe.append([c.recipe_name for c in wb.results.candidates])
        )
    )
    wb.quantization.precision.value = "int8-dynamic"
    assert "Not measured yet" in wb.lookup.text
    wb.run_panel.run_button.click()
    assert wb.run_panel.run_button.disabled  # while it runs
    cand = wb.wait()
    assert seen_before_recipe == [["baseline"]]  # the baseline was in the charts before the recipe ran
    assert cand.status == "ok" and cand.recipe_name == "int8-dynamic"
    assert wb.run_panel.status.text.startswith("Done: int8-dynamic") and wb.run_panel.error.text == ""
    assert wb.run_panel.progress.value == 1.0 and not wb.run_panel.run_button.disabled
    pts = points(wb)
    assert set(pts) == {"baseline", "int8-dynamic"} and pts["int8-dynamic"]["role"] == "selected"
    assert pts["int8-dynamic"]["x"] == pytest.approx(cand.metrics["p50_ms"])
    assert pts["int8-dynamic"]["y"] == pytest.approx(cand.metrics["accuracy"])
    assert cand.metrics["accuracy"] > 0.9
    # the measured baseline is in the picker ("not measured yet" before it ran)
    (base,) = [c for c in wb.results.candidates if c.recipe_name == "baseline"]
    info = wb.picker.info.value
    assert "not measured yet" not in info
    assert f"accuracy {100 * base.metrics['accuracy']:.1f} %" in info and "p50 " in info

    # move away and back: the measured candidate comes from the store, nothing reruns
    n_rows, n_runs = len(store.candidates()), wb.runs_started
    wb.quantization.precision.value = "bf16"
    assert "Not measured yet" in wb.lookup.text and wb.results.current is None
    wb.quantization.precision.value = "int8-dynamic"
    assert "Already measured" in wb.lookup.text and cand.id in wb.lookup.text
    assert wb.results.current == cand.id and points(wb)["int8-dynamic"]["role"] == "selected"
    assert (len(store.candidates()), wb.runs_started, wb.worker.busy) == (n_rows, n_runs, False)
    # the budget is drawn and judged
    wb.budget.max_ms.value = "1000"
    assert any(lay.get("description") == "budget" for lay in wb.results.tradeoff.to_dict()["layer"])
    assert "fits the budget" in wb.results.verdict.value


def test_cancel_stops_the_run_and_records_it(wb, store):
    assert wb.cancel() is False and "Nothing to cancel" in wb.run_panel.status.text
    gate = Gate("static-int8")
    wb.add_progress_listener(gate)
    wb.quantization.precision.value = "int8-static"
    future = wb.run()
    assert gate.reached.wait(120), "the run never reached static-int8"
    wb.run_panel.cancel_button.click()
    gate.release.set()
    assert future.result(120) is None
    assert "Cancelled" in wb.run_panel.status.text and "recorded in the run store" in wb.run_panel.status.text.lower()
    assert wb.run_panel.progress.bar_style == "warning" and not wb.run_panel.run_button.disabled
    cancelled = store.candidates(status="cancelled")
    assert len(cancelled) == 1 and cancelled[0].recipe["steps"][-1]["kind"] == "static-int8"
    assert not [c for c in store.candidates(status="ok") if c.recipe_name.startswith("int8-static")]
    assert "cancelled" in wb.results.table.value


def test_run_pressed_twice_runs_once(wb, store):
    gate = Gate("bf16")
    wb.add_progress_listener(gate)
    wb.quantization.precision.value = "bf16"
    first = wb.run()
    assert gate.reached.wait(120)
    assert wb.run() is None  # the second press while the first run is in flight
    assert "already in progress" in wb.run_panel.error.text
    gate.release.set()
    assert first.result(120).status == "ok"
    assert len([c for c in store.candidates() if c.recipe_name == "bf16"]) == 1 and wb.runs_started == 1


def test_bad_settings_refuse_to_run(wb):
    wb.budget.max_ms.value = "abc"
    assert wb.run() is None and "'Max latency (ms)' box must be a number" in wb.run_panel.error.text
    wb.budget.max_ms.value = ""
    wb.picker.bundled.value = "__other__"
    wb.picker.custom.value = ""
    assert wb.run() is None and "No model given" in wb.run_panel.error.text
    assert wb.runs_started == 0


def test_pass_failing_midway_is_shown(digits_model, fast_bench, store):
    # the same digits network, but no calibration split: static INT8 fails at step 2, after the export
    d = digits_model.data
    data = TaskData(d.train, d.eval, None, d.label_names, {**d.spec, "calibration": None})
    model = from_module(digits_model.baseline.module, data, name="digits-nocalib")
    wb = Workbench(model, store=store, bench=fast_bench, threads=1)
    try:
        wb.quantization.precision.value = "int8-static"
        cand = wb.run().result(120)
        assert cand.status == "failed"
        assert wb.run_panel.error.text.startswith("The run failed: step 2 (static-int8)")
        assert "calibration data" in wb.run_panel.error.text and wb.run_panel.error.kind == "error"
        assert wb.run_panel.progress.bar_style == "danger"
        assert "failed" in wb.results.table.value and "baseline" in points(wb)  # the baseline still charted
        assert [c.status for c in store.candidates("digits-nocalib", include_intermediate=False)] == ["ok", "failed"]
    finally:
        wb.close()


def test_export_report_writes_html(wb, tmp_path):
    wb.report_dir = tmp_path / "reports"
    wb.quantization.precision.value = "int8-dynamic"
    assert wb.run().result(120).status == "ok"
    wb.budget.max_ms.value = "1000"
    wb.run_panel.report_button.click()
    res = wb.wait(600)
    assert res is not None and res.ok, (res, wb.run_panel.error.text)
    html = res.html_path.read_text()
    assert "digits-cnn" in html and "int8-dynamic" in html
    (out,) = wb.run_panel.report_out.outputs
    assert res.html_path.name in out["data"]["text/html"] and "Report written" in wb.run_panel.status.text


def test_pruning_panel_runs_a_pruned_candidate(wb, store):
    wb.pruning.enabled.value = True
    wb.pruning.sparsity.value = 50
    wb.pruning.finetune_steps.value = 0
    assert wb.recipe().name == "magnitude-prune-50pct"
    cand = wb.run().result(120)
    # half the weights zeroed, no fine-tuning: the digits CNN keeps its accuracy (no degradation flagged)
    assert cand.status == "ok", cand.error
    assert cand.recipe["steps"][0]["sparsity"] == 0.5
    assert "magnitude-prune-50pct" in points(wb) and wb.results.current == cand.id
    wb.pruning.enabled.value = False  # back to the plain baseline: from the store
    assert "Already measured (baseline" in wb.lookup.text


# ---- causal language models -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lm():
    """The 2-block random Llama of workbench.lm.testing, scored on 4 short documents (a few seconds a run)."""
    from workbench import load_model
    from workbench.lm.testing import tiny_lm_folder

    return load_model(str(tiny_lm_folder()), n_eval=4, seq_len=64, prompt_len=16, decode_tokens=8, sample_tokens=6)


def test_lm_dashboard_charts_tokens_per_s_against_perplexity(tiny_lm, store, tmp_path):
    from workbench import BenchConfig

    bench = BenchConfig(warmup=1, runs=8, threads=1)
    dash = Workbench(tiny_lm, store=store, bench=bench, threads=1, report_dir=tmp_path / "reports")
    try:
        dash.wait()
        # the LM settings and budget replace the precision slider, the accuracy limits and the search
        assert dash.is_lm and dash.quantization.layout.display == "none" and dash.lm_recipes.layout.display == ""
        assert dash.budget._tok_box.layout.display == "" and dash.budget._ms_box.layout.display == "none"
        assert dash.search.run_button.disabled and "causal language model" in dash.search.status.value
        dash.lm_recipes.choice.value = "lm-int8"
        assert [s.kind for s in dash.recipe().steps] == ["lm-onnx-export", "lm-weight-only"]
        cand = dash.run().result(120)
        assert cand.status == "ok" and cand.recipe_name == "lm-int8", cand.error
        m = cand.metrics
        spec = dash.results.tradeoff.to_dict()
        assert spec["usermeta"]["workbench"] == {"x": "tokens_per_s", "y": "perplexity"}
        (layer,) = [lay for lay in spec["layer"] if lay.get("description") == "candidates"]
        assert (layer["encoding"]["x"]["title"], layer["encoding"]["y"]["title"]) == ("tokens / s", "perplexity")
        pts = points(dash)
        assert set(pts) == {"baseline", "lm-int8"} and pts["lm-int8"]["role"] == "selected"
        assert pts["lm-int8"]["x"] == pytest.approx(m["tokens_per_s"]) and pts["lm-int8"]["y"] == m["perplexity"]
        # the table has the CLI's LM columns, with the perplexity CI; the summary line speaks tokens/s
        table = dash.results.table.value
        lo, hi = m["perplexity_ci"]
        assert f"{m['perplexity']:.2f} [{lo:.2f}, {hi:.2f}]" in table and f"{m['tokens_per_s']:.1f}" in table
        assert "tok/s" in table and "prefill ms" in table and "accuracy" not in table
        status = dash.run_panel.status.text
        assert f"{m['tokens_per_s']:.1f} tokens/s" in status and f"perplexity {m['perplexity']:.2f}" in status
        assert "tokens/s" in dash.picker.info.value  # the measured baseline, in LM terms
        # an LM budget: a tokens/s floor above the candidate's speed is drawn and breaks it
        floor = 2 * m["tokens_per_s"]
        dash.budget.min_tok_s.value = f"{floor:.0f}"
        assert dash.budget.budget().min_tokens_per_s == float(f"{floor:.0f}")
        (rule,) = [lay for lay in dash.results.tradeoff.to_dict()["layer"] if lay.get("description") == "budget"]
        assert rule["data"]["values"][0]["x"] == float(f"{floor:.0f}")
        assert "lm-int8 breaks the budget: tokens_per_s" in dash.results.verdict.value
        dash.budget.min_tok_s.value = ""
        dash.budget.max_ppl.value = "5"  # lm-int8 stays within 5 % of FP32 perplexity on this model
        assert dash.budget.budget().max_perplexity_increase == pytest.approx(0.05)
        assert abs(m["perplexity_increase"]) < 0.05 and "lm-int8 fits the budget" in dash.results.verdict.value
        # Export report: the template gets the LM budget and eval protocol, so it reuses what was measured here
        n_records = len(store.candidates())
        dash.run_panel.report_button.click()
        res = dash.wait(600)
        assert res is not None and res.ok, (res, dash.run_panel.error.text)
        assert len(store.candidates()) == n_records  # nothing measured again
        html = res.html_path.read_text()
        assert "perplexity increase &lt;= 5 %" in html and "ppl [95% CI]" in html and cand.id in html
    finally:
        dash.close()


# ---- search mode ----------------------------------------------------------------------------------------
def test_search_mode_shares_the_dashboard_and_draws_trials_live(wb, store):
    from workbench.report.search_section import search_trials

    assert wb.modes.children[1] is wb.search and wb.modes.get_title(1) == "Search"
    wb.budget.max_drop.value = "2"
    s = wb.search
    assert s.max_drop.layout.display == "none"  # the dashboard's budget panel sets the limits
    s.families.value = ("int8-dynamic",)
    s.trials.value = 2
    drawn: list[set[str]] = []
    reached, release = threading.Event(), threading.Event()

    def on_trial(rec) -> None:
        (layer,) = [lay for lay in s.tradeoff.to_dict()["layer"] if lay.get("description") == "candidates"]
        drawn.append({r["id"] for r in layer["data"]["values"]})
        reached.set()
        release.wait(60)  # hold the search here while the test presses Run

    s.add_trial_listener(on_trial)
    s.run_button.click()
    assert reached.wait(120), "no trial finished"
    assert wb.run() is None and "A search is running" in wb.run_panel.error.text
    release.set()
    s.wait(300)
    assert s.result is not None and len(s.records) == 2, s.status.value
    assert s.result.budget == wb.budget.budget()  # the dashboard's budget
    assert s.result.baseline.threads == wb.budget.threads.value  # its threads, through the bench settings
    ids = [r.candidate.id for r in s.records]
    # live: the first trial was on the chart when it finished, before the second one ran
    assert len(drawn) == 2 and ids[0] in drawn[0] and ids[1] not in drawn[0] and set(ids) <= drawn[1]
    spec = s.tradeoff.to_dict()
    (layer,) = [lay for lay in spec["layer"] if lay.get("description") == "candidates"]
    assert set(ids) | {s.result.baseline.id} == {r["id"] for r in layer["data"]["values"]}
    (front,) = [lay for lay in spec["layer"] if lay.get("description") == "pareto-front"]
    assert {r["id"] for r in front["data"]["values"]} <= {r["id"] for r in layer["data"]["values"]}
    assert front["data"]["values"] and s.table.value.count("<tr>") == 3
    # the trials are in the shared run store (and its study), and in the run tab's results
    assert {t.candidate.id for t in search_trials(store, "digits-cnn")} == set(ids)
    assert {r.candidate.recipe_name for r in s.records} <= set(points(wb))
