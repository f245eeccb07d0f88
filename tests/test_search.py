"""Search under a budget: best candidate, Pareto front, rejections with reasons, resume, CLI, errors."""

from __future__ import annotations

import json

import pytest

from workbench import BenchConfig, CancelledError, RunContext
from workbench.search.run import SearchSpace, SearchSpaceError, search
from workbench.tasks.budget import Budget

SPACE = ("fp32", "int8-dynamic", "int4")


def _dominates(a, b) -> bool:
    """``a`` is at least as good as ``b`` on accuracy (higher), p50 and size (lower), and better on one."""
    qa, qb = a.get("accuracy"), b.get("accuracy")
    la, lb = a.get("p50_ms"), b.get("p50_ms")
    sa, sb = a.get("size_bytes"), b.get("size_bytes")
    return qa >= qb and la <= lb and sa <= sb and (qa > qb or la < lb or sa < sb)


@pytest.fixture
def bench():
    return BenchConfig(warmup=2, runs=5, threads=1)


def test_search_best_within_budget_and_rejections(digits_model, store, bench):
    seen = []
    budget = Budget(max_size_mb=0.3, max_accuracy_drop=0.02)
    res = search(
        digits_model, budget, SearchSpace.default(SPACE), trials=5, store=store, bench=bench, on_trial=seen.append
    )
    assert len(res.trials) == 5 and [t.number for t in seen] == [t.number for t in res.trials]
    assert len({t.candidate.key for t in res.trials}) == 5  # five distinct recipes, no duplicate builds
    assert res.best is not None and res.best.get("size_bytes") / 1e6 <= 0.3
    assert res.best.get("accuracy_drop") <= 0.02
    # every FP32 candidate (~0.6 MB) is rejected on size, with the excess recorded
    fp32 = [t for t in res.trials if t.family == "fp32"]
    for t in fp32:
        (v,) = [v for v in t.violations if v.constraint == "size"]
        assert v.value > 0.5 and v.excess == pytest.approx(v.value - 0.3)
        assert "size" in t.verdict and "exceeds 0.3 MB" in t.verdict
    # the front (baseline and trials, accuracy up, p50 and size down): no trial beats a front point on all
    # three, and every candidate left off the front is beaten on all three by some front point
    assert res.front and all(c.ok for c in res.front)
    measured = [c for c in res.candidates if c.ok and c.get("p50_ms") is not None]
    front_ids = {c.id for c in res.front}
    assert front_ids <= {c.id for c in measured}
    for c in res.front:
        assert not any(_dominates(o, c) for o in measured), c.recipe_name
    for c in (c for c in measured if c.id not in front_ids):
        assert any(_dominates(f, c) for f in res.front), c.recipe_name
    # the ends of the front: the most accurate candidate (ties: faster, then smaller) and the smallest one
    assert max(measured, key=lambda c: (c.get("accuracy"), -c.get("p50_ms"), -c.get("size_bytes"))).id in front_ids
    assert min(measured, key=lambda c: (c.get("size_bytes"), -c.get("accuracy"), c.get("p50_ms"))).id in front_ids
    # the study is persisted beside the run store, with each trial's verdict
    import optuna

    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    verdicts = [t.user_attrs["verdict"] for t in study.trials if not t.user_attrs.get("duplicate")]
    assert sorted(verdicts) == sorted(t.verdict for t in res.trials)
    assert "Best (fastest that fits)" in res.explain()
    d = json.loads(json.dumps(res.to_dict(), default=str))
    assert d["best_id"] == res.best.id and len(d["trials"]) == 5


def test_search_interrupted_then_resumed_reuses_everything(digits_model, store, bench):
    ctx = RunContext()
    done = []

    def stop_after_two(t):
        done.append(t)
        if len(done) == 2:
            ctx.cancel()

    space = SearchSpace.default(["int8-dynamic", "int4"])
    with pytest.raises(CancelledError):
        search(
            digits_model,
            Budget(max_accuracy_drop=0.02),
            space,
            trials=4,
            store=store,
            bench=bench,
            ctx=ctx,
            on_trial=stop_after_two,
            study_name="resume-me",
        )
    finals_before = {c.key for c in store.candidates("digits-cnn", status="ok")}
    res = search(
        digits_model, Budget(max_accuracy_drop=0.02), space, trials=4, store=store, bench=bench, study_name="resume-me"
    )
    assert len(res.trials) == 4
    resumed = [t for t in res.trials if t.reused]
    assert {t.candidate.id for t in done} <= {t.candidate.id for t in resumed}
    # nothing measured twice: one ok candidate per recipe key
    oks = [c for c in store.candidates("digits-cnn", status="ok")]
    assert len(oks) == len({c.key for c in oks})
    assert finals_before < {c.key for c in oks}


def test_impossible_budget_says_so_and_shows_closest(digits_model, store, bench):
    res = search(
        digits_model,
        Budget(max_latency_ms=1e-6, max_size_mb=0.01),
        SearchSpace.default(["int8-dynamic"]),
        trials=2,
        store=store,
        bench=bench,
    )
    assert res.best is None
    text = res.explain()
    assert "Nothing fits the budget" in text and "Closest candidates" in text
    closest = res.closest()
    assert closest and all({v.constraint for v in t.violations} == {"latency", "size"} for t in closest)
    assert "latency" in text and "exceeds 1e-06 ms" in text
    assert res.to_dict()["closest"]


def test_empty_search_space_is_a_clear_error():
    with pytest.raises(SearchSpaceError, match="search space is empty"):
        SearchSpace.default(families=[])
    with pytest.raises(SearchSpaceError, match="search space is empty"):
        SearchSpace({})
    with pytest.raises(SearchSpaceError, match="has no values"):
        SearchSpace.default(["int4"], int4__block_size=())
    with pytest.raises(SearchSpaceError, match="Unknown search family 'int3'.*int8-dynamic"):
        SearchSpace.default(["int3"])


def test_space_for_onnx_model_drops_pytorch_families():
    space = SearchSpace.default(["half", "int8-dynamic"]).for_model("onnx")
    assert list(space.families) == ["int8-dynamic"]
    with pytest.raises(SearchSpaceError, match="empty for a onnx model"):
        SearchSpace.default(["half"]).for_model("onnx")


def test_cli_search_json(tmp_path, capsys):
    from workbench.cli.main import main

    rc = main(
        [
            "--store",
            str(tmp_path / "runs.sqlite"),
            "search",
            "digits-cnn",
            "--max-drop",
            "2",
            "--trials",
            "2",
            "--family",
            "int8-dynamic",
            "--threads",
            "1",
            "--n-eval",
            "200",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["best_id"] and len(out["trials"]) == 2
    assert out["budget"]["max_accuracy_drop"] == pytest.approx(0.02)
    rc = main(
        [
            "--store",
            str(tmp_path / "runs.sqlite"),
            "search",
            "digits-cnn",
            "--max-latency-ms",
            "0.000001",
            "--trials",
            "1",
            "--family",
            "int8-dynamic",
            "--threads",
            "1",
            "--n-eval",
            "200",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 1 and "Nothing fits the budget" in text


def test_search_panel_draws_the_front_live(digits_model, store, bench):
    from widgets.search_panel import SearchPanel

    panel = SearchPanel(digits_model, store, bench=bench)
    panel.max_drop.value = 2.0
    panel.trials.value = 3
    panel.families.value = ("int8-dynamic",)
    panel.threads.value = 1
    panel.run(wait=True)
    assert panel.result is not None and len(panel.records) == 3
    assert panel.redraws == 4  # once per finished trial, once at the end with the best highlighted
    assert "<svg" in panel.chart.value and panel.progress.value == 3
    assert panel.table.value.count("<tr>") == 4 and "fits" in panel.table.value
    assert "Best (fastest that fits)" in panel.status.value
    assert panel.result.budget.max_accuracy_drop == pytest.approx(0.02)
    # a Cancel click stops the next search at its next step; what was measured stays recorded
    panel.run()
    panel.cancel_button.click()
    panel.wait(120)
    assert "Cancel" in panel.status.value and not panel.run_button.disabled
    panel.families.value = ()
    panel.run(wait=True)
    assert "search space is empty" in panel.status.value
