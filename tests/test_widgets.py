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
from workbench.measure.noise import machine_speed
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
    assert wb.lookup.text == "Not measured yet: press Run to measure int8-dynamic."  # names the settings held
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
    # under the table: how far the machine's own speed moved across these two timings (their stored kernel readings)
    moved = machine_speed([base.metrics, cand.metrics])
    assert moved is not None and moved["timings"] == 2
    assert f"moved by {moved['moved_pct']:.0f} %" in wb.results.table.value

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


def test_retime_button_times_the_selected_candidates_again(wb, store):
    wb.quantization.precision.value = "int8-dynamic"
    cand = wb.results.current and store.get(wb.results.current)
    if cand is None or cand.recipe_name != "int8-dynamic":  # run alone: measure it first
        wb.run_panel.run_button.click()
        cand = wb.wait()
    first = cand.get("p50_ms")
    wb.results.compare.value = (cand.id,)
    wb.run_panel.retime_button.click()
    done = wb.wait()
    assert [r.candidate.id for r in done] == [cand.id] and wb.run_panel.error.text == ""
    now = store.get(cand.id)
    assert now.get("retimed") >= 1 and now.get("first_timing")["p50_ms"] == first
    assert wb.run_panel.status.text.startswith("Re-timed: int8-dynamic p50")
    # the chart shows the new timing
    assert points(wb)["int8-dynamic"]["x"] == pytest.approx(now.get("p50_ms"))
    wb.results.compare.value = ()


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


def test_export_report_into_an_uncreatable_folder_shows_the_error_in_the_panel(wb, tmp_path):
    (tmp_path / "a_file").write_text("x")
    wb.report_dir = tmp_path / "a_file" / "reports"  # a folder under a file cannot be made
    assert wb.run().result(120).status == "ok"
    wb.run_panel.report_button.click()  # must not raise into the notebook
    wb.wait(60)
    assert "Export report failed" in wb.run_panel.error.text or "a_file" in wb.run_panel.error.text
    assert not wb.running


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


def _layer(panel, description: str) -> list[dict]:
    (layer,) = [lay for lay in panel.tradeoff.to_dict()["layer"] if lay.get("description") == description]
    return layer["data"]["values"]


def test_architecture_search_in_the_panel_cancels_while_screening_then_runs_to_the_end(digits_model, fast_bench, store):
    import html

    from widgets.search_panel import SearchPanel
    from workbench.report.search_section import search_trials

    panel = SearchPanel(digits_model, store=store, bench=fast_bench)
    assert "architecture" in panel.families.options and "architecture" not in panel.families.value
    assert panel.architecture_box.layout.display == "none"
    panel.families.value = ("architecture",)
    assert panel.architecture_box.layout.display != "none" and panel.trials.description == "students to train"
    assert (panel.time_budget.value, panel.train_steps.value) == (20, 480)
    panel.train_steps.value, panel.trials.value, panel.threads.value, panel.max_drop.value = 40, 2, 1, 1.0
    n_archs = len(panel.space().points(digits_model))
    timed: list[list[dict]] = [[]]
    drawn: list[int] = []

    def on_row(row) -> None:
        timed[-1].append(dict(row))
        drawn.append(len(_layer(panel, "untrained")))  # the tick is on the chart when the row arrives
        if len(timed) == 1:  # the first search: Cancel while the first architectures are timed
            panel.cancel_button.click()

    panel.add_screen_listener(on_row)
    panel.run(wait=True)
    assert "Cancelled while timing architectures untrained: 1 timed" in panel.status.value
    assert panel.result is None and panel.records == [] and not panel.run_button.disabled
    (first,) = timed[0]
    assert html.escape(first["label"]) in panel.untrained.value
    assert panel.progress.description == "screening" and panel.progress.max == n_archs

    # Search again: what was timed is heard again (not timed again), the rest is timed live, then trained
    timed.append([])
    panel.run(wait=True)
    res = panel.result
    assert res is not None and res.trials, panel.status.value
    labels = [r["label"] for r in res.screened]
    assert len(labels) == n_archs and sorted(r["label"] for r in timed[1]) == sorted(labels)
    (again,) = [r for r in timed[1] if r["label"] == first["label"]]
    assert again["p50_ms"] == first["p50_ms"]  # reused, not timed again
    assert drawn == [1, *range(1, n_archs + 1)]  # each untrained architecture was drawn as it arrived
    # the untrained table: one row per architecture, each with its fate from the search
    table = panel.untrained.value
    assert "Architectures timed untrained" in table and table.count("<tr>") == n_archs + 1
    for r in res.screened:
        assert f"<td>{html.escape(r['label'])}</td>" in table and html.escape(r["fate"]) in table
    assert "its fate follows" not in table
    trained = {r["candidate_id"] for r in res.screened if "candidate_id" in r}
    assert trained == {t.candidate.id for t in res.trials} == {t.candidate.id for t in panel.records}
    # the chart: the trained students and the baseline as points, every architecture as a tick
    assert {v["id"] for v in _layer(panel, "candidates")} == trained | {res.baseline.id}
    assert sorted(v["label"] for v in _layer(panel, "untrained")) == sorted(labels)
    assert {v["id"] for v in _layer(panel, "pareto-front")} <= trained | {res.baseline.id}
    # the status explains the search, its decisions included; the bar counted the students at the end
    status = html.unescape(panel.status.value)
    assert res.decisions[1] in status and f"Searched {len(res.trials)} students trained" in status
    assert panel.progress.description == "trials" and panel.progress.value == panel.progress.max == 2
    # the students are in the run store and its study
    assert {t.candidate.id for t in search_trials(store, "digits-cnn")} == trained


def test_the_architecture_family_is_searched_on_its_own(digits_model, store):
    import html

    from widgets.search_panel import SearchPanel

    panel = SearchPanel(digits_model, store=store)
    panel.families.value = ("architecture", "fp32")
    panel.run_button.click()
    assert "wb-error" in panel.status.value and not panel.running and panel.result is None
    assert "cannot be mixed with 'fp32'" in html.unescape(panel.status.value)
    assert not panel.run_button.disabled and store.candidates() == []  # nothing was measured
    panel.families.value = ("fp32",)
    assert panel.architecture_box.layout.display == "none" and panel.trials.description == "recipes to try"


# ---- the user's own data ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear_onnx(tmp_path_factory):
    """A 4-feature, 3-class linear model as an .onnx file and two labelled .npz files of its input ``x``."""
    import numpy as np
    import torch

    d = tmp_path_factory.mktemp("userdata")
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    torch.onnx.export(
        lin,
        (torch.randn(1, 4),),
        str(d / "lin.onnx"),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
        dynamo=False,
    )
    rng = np.random.default_rng(0)
    for name, n in (("features.npz", 60), ("more.npz", 40)):
        x = rng.standard_normal((n, 4)).astype(np.float32)
        with torch.no_grad():
            y = lin(torch.from_numpy(x)).argmax(1).numpy()
        np.savez(d / name, x=x, labels=np.array(["cat", "dog", "eel"])[y])
    return d


def write_motion_csv(path, windows: int = 40, steps: int = 50):
    """A user's sensor log: one row per time step (ax, ay, az), ``window`` ids, an ``activity`` label per window
    (walk: a 1.5 Hz swing; rest: noise), the label in a column the reader does not guess."""
    import csv

    import numpy as np

    rng = np.random.default_rng(1)
    t = np.arange(steps) / 10
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["window", "ax", "ay", "az", "activity"])
        for i in range(windows):
            act, amp = ("walk", 1.0) if i % 2 == 0 else ("rest", 0.05)
            for k in range(steps):
                xyz = amp * np.sin(2 * np.pi * 1.5 * t[k] + np.arange(3)) + 0.05 * rng.standard_normal(3)
                out.writerow([i, *(f"{v:.4f}" for v in xyz), act])
    return path


def info_rows(picker: ModelPicker) -> dict[str, str]:
    """The picker's info table as label -> text, as the page shows it (unescaped; repeated labels joined)."""
    import html
    import re

    out: dict[str, str] = {}
    for k, v in re.findall(r"<tr><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td></tr>", picker.info.value):
        k, v = html.unescape(k), html.unescape(v)
        out[k] = f"{out[k]}\n{v}" if k in out else v
    return out


def test_picker_scores_a_model_on_the_users_data(linear_onnx):
    from workbench.data.readers import read_data

    data = str(linear_onnx / "features.npz")
    picker = ModelPicker(str(linear_onnx / "lin.onnx"), data=data, autoload=False)
    assert picker.bundled.value == "__other__" and picker.data_panel.path.value == data
    assert picker.data_panel.path.placeholder.startswith("your data: file, folder or hub dataset id")
    assert picker.data_settings() == {"data": data} and picker.model is None
    m = picker.load().result(120)
    assert m is picker.model and picker.error.text == "", picker.error.text
    assert m.task.name == "classification" and m.load_spec["data"] == data
    d = m.info["dataset"]
    counts = read_data(data).label_counts()  # what the panel must show: the reader's own summary
    rows = info_rows(picker)
    assert rows["data"] == data and rows["format"] == "npz / arrays" and rows["rows"] == "60"
    assert rows["sha256"] == d["sha256"][:12]  # the short hash
    assert rows["labels (3)"] == ", ".join(f"{k}: {v}" for k, v in counts.items()) == "cat: 21, dog: 25, eel: 14"
    assert rows["columns"] == "label = 'labels' (detected), arrays = 'x' (detected)"
    assert rows["arrays"] == "x (60, 4) float32" and rows["eval examples"] == str(len(m.data.eval))
    # a model loaded on data, handed to a new picker: its data fills the data box, and it is the choice's model
    again = ModelPicker(m, autoload=False)
    assert again.data_panel.path.value == data and again.model is m and info_rows(again)["rows"] == "60"
    # cached per model AND data: other data is another model; back to the first data: no reload
    picker.data_panel.path.value = str(linear_onnx / "more.npz")
    assert picker.model is None and "Press Load" in picker.error.text
    other = picker.load().result(120)
    assert other is not m and other.info["dataset"]["rows"] == 40 and info_rows(picker)["rows"] == "40"
    picker.data_panel.path.value = data
    assert picker.model is m and info_rows(picker)["rows"] == "60"
    # no data: the model's default (random inputs for an .onnx file), a third model
    picker.data_panel.path.value = ""
    assert picker.data_settings() == {} and picker.model is None
    assert picker.load().result(120).info["dataset"]["source"] == "synthetic"
    assert info_rows(picker)["data"] == "synthetic" and "random inputs" in info_rows(picker)["note"]
    # a column named by the user is "given"; the task dropdown and options reach load_model
    picker.data_panel.path.value = data
    picker.data_panel.boxes["label_column"].value = "labels"
    picker.data_panel.task.value = "classification"
    assert picker.data_settings() == {"data": data, "task": "classification", "label_column": "labels"}
    picker.load().result(120)
    assert info_rows(picker)["columns"].startswith("label = 'labels' (given)") and picker.model is not m


def test_picker_trains_sensor_cnn_on_a_users_csv(tmp_path):
    data = str(write_motion_csv(tmp_path / "motion.csv"))
    picker = ModelPicker("sensor-cnn", autoload=False)
    panel = picker.data_panel
    assert panel.options_box.selected_index is None  # the column options stay folded away until needed
    assert [t for t, _ in panel.task.options][1:] == [
        "text-classification",
        "embedding-classification",
        "image-classification",
        "series-classification",
        "causal-lm",
        "classification",
        "generic",
    ]
    panel.path.value = data
    panel.boxes["label_column"].value = "activty"  # a typo: the panel says so and nothing is loaded
    assert picker.load().result(120) is None
    assert picker.error.kind == "error" and "activty" in picker.error.text and "activity" in picker.error.text
    assert picker.model is None and picker.loaded is None
    panel.boxes["label_column"].value = "activity"
    panel.boxes["group_column"].value = "window"
    m = picker.load().result(120)
    assert m is picker.model and m.task.name == "series-classification", picker.error.text
    rows = info_rows(picker)
    assert rows["data"] == data and rows["format"] == "csv / series" and rows["rows"] == "40"
    assert rows["labels (2)"] == "rest: 20, walk: 20" and rows["sha256"] == m.info["dataset"]["sha256"][:12]
    assert rows["columns"] == "series = 'ax,ay,az' (detected), group = 'window' (given), label = 'activity' (given)"
    assert rows["channels"] == "ax, ay, az" and rows["shape"] == "40 x 3 x 50"
    assert "40 windows of 50 time steps x 3 channels" in rows["note"]
    # the bundled BasicMotions model is another one (cached per model and data)
    panel.path.value = ""
    for box in panel.boxes.values():
        box.value = ""
    assert picker.model is None


def test_picker_data_errors_are_shown_and_the_previous_model_stays(linear_onnx, digits_model):
    data = str(linear_onnx / "features.npz")
    picker = ModelPicker(str(linear_onnx / "lin.onnx"), data=data, autoload=False)
    good = picker.load().result(120)
    shown = picker.info.value
    picker.data_panel.boxes["label_column"].value = "label"  # a typo: the .npz calls it 'labels'
    assert picker.load().result(120) is None
    text = picker.error.text
    assert picker.error.kind == "error" and text.startswith("Cannot load") and "features.npz" in text
    assert "no array 'label' for the labels" in text and "Did you mean 'labels'?" in text
    assert "is still loaded" in text and picker.loaded is good and picker.info.value == shown
    picker.data_panel.boxes["label_column"].value = ""  # fixed: the model loaded before, at once
    assert picker.model is good and picker.error.text == ""
    picker.data_panel.path.value = str(linear_onnx / "missing.csv")  # a file that is not there
    assert picker.load().result(120) is None and "missing.csv" in picker.error.text and picker.loaded is good
    picker.data_panel.path.value = data
    picker.data_panel.boxes["window"].value = "ten"  # checked by the panel before anything loads
    assert picker.load() is None and "'Window (rows)' box must be a whole number" in picker.error.text
    picker.data_panel.boxes["window"].value = ""
    # a bundled model that only runs on its own data says so, and which models take data
    digits = ModelPicker(digits_model, autoload=False)
    assert digits.model is digits_model
    digits.data_panel.path.value = data
    assert digits.model is None and digits.load().result(60) is None
    assert "only runs on its own data" in digits.error.text and digits.loaded is digits_model
    digits.data_panel.path.value = ""
    assert digits.model is digits_model


def test_dashboard_runs_on_the_users_data_and_remembers_it(linear_onnx, store, fast_bench):
    from workbench import optimize

    onnx, data = str(linear_onnx / "lin.onnx"), str(linear_onnx / "features.npz")
    wb = Workbench(onnx, store=store, bench=fast_bench, threads=1, data=data)
    try:
        assert wb.picker.data_panel.path.options == ()  # a fresh store: no recent data sets yet
        base = wb.run().result(120)
        assert base.status == "ok" and base.notes["data"]["source"] == data, base.error
        assert base.metrics["accuracy"] == 1.0  # the labels are the model's own answers
        assert wb.picker.model.info["dataset"]["sha256"] == base.notes["data"]["sha256"]
        assert set(points(wb)) == {"baseline"} and [c.id for c in wb.candidates()] == [base.id]
        # the run remembered the data set: it is offered in the data box
        assert wb.picker.data_panel.path.options == (data,)
        # other data: a new model, and its own candidates (the first data's baseline is not among them)
        wb.picker.data_panel.path.value = str(linear_onnx / "more.npz")  # Enter in the box: it loads (autoload)
        wb.wait()
        assert wb.picker.model.info["dataset"]["rows"] == 40 and wb.candidates() == [] and points(wb) == {}
        other = wb.run().result(120)
        assert other.id != base.id and other.notes["data"]["rows"] == 40
        assert [c.id for c in wb.candidates()] == [other.id]
        wb.picker.data_panel.path.value = data  # back: the first model and its candidates, from the store
        assert [c.id for c in wb.candidates()] == [base.id] and "Already measured" in wb.lookup.text
        assert wb.picker.data_panel.path.options[0] == str(linear_onnx / "more.npz")
    finally:
        wb.close()
    # optimize records the data set too: a new picker on that store offers it
    optimize(onnx, [], store=store, bench=fast_bench, data=str(linear_onnx / "more.npz"))
    picker = ModelPicker(onnx, store=store, autoload=False)
    assert picker.data_panel.path.options[0] == str(linear_onnx / "more.npz")
    assert set(picker.data_panel.path.options) == {data, str(linear_onnx / "more.npz")}


def test_an_exception_in_the_search_button_is_shown_in_the_panel(digits_model, store, monkeypatch):
    from widgets.search_panel import SearchPanel

    panel = SearchPanel(digits_model, store=store)

    def broken(*_a, **_k):
        raise OSError("No space left on device")

    monkeypatch.setattr(panel, "budget", broken)  # anything the handler meets that is not a WorkbenchError
    panel.run_button.click()  # must not escape into the notebook log
    assert "Search failed: OSError: No space left on device" in panel.status.value
