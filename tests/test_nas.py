"""Architecture search: students of other depths and widths, timed untrained first, trained last, within a budget."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import workbench as wb
from workbench.deploy.probe import export_probe
from workbench.passes.registry import PassJob, apply_pass
from workbench.passes.surgery import removable_blocks
from workbench.recipes.registry import INT8_FUSIONS
from workbench.search.nas import ArchitectureSpace, read_device_table
from workbench.search.run import search
from workbench.search.space import SearchSpace, SearchSpaceError
from workbench.tasks.budget import Budget

#: a digits-cnn space that trains in seconds
SMALL = dict(train_steps=60, train_seconds=20.0)


@pytest.fixture(scope="module")
def bench():
    return wb.BenchConfig(threads=1, warmup=2, runs=10)


@pytest.fixture(scope="module")
def sensor_model():
    return wb.load_model("sensor-cnn", n_eval=40)


def _cos(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# ---- the space ---------------------------------------------------------------------------------------
def test_space_is_derived_from_the_transformer(minilm_model):
    pts = ArchitectureSpace().points(minilm_model)
    # MiniLM has 6 layers: 1, 2, 3, 4 kept x heads 1, 0.5 x FFN 1, 0.5, 0.25, dynamic INT8
    assert len(pts) == 24
    assert {p.layers for p in pts} == {1, 2, 3, 4}
    assert {p.heads for p in pts} == {1.0, 0.5} and {p.width for p in pts} == {1.0, 0.5, 0.25}
    assert {p.precision for p in pts} == {"int8-dynamic"}
    assert "L2 h0.5 ffn0.5 int8-dynamic" in {p.label for p in pts}
    with pytest.raises(wb.ConfigError, match=r"ints in \[1, 6\].*6 layers"):
        ArchitectureSpace(layers=(2, 8)).points(minilm_model)
    with pytest.raises(wb.ConfigError, match="'drop_blocks' applies to CNNs"):
        ArchitectureSpace(drop_blocks=(1,)).points(minilm_model)


def test_space_is_derived_from_the_cnns(digits_model, sensor_model):
    digits = ArchitectureSpace().points(digits_model)
    # digits-cnn has no convolution it can lose (1 -> 32 -> 64 channels): width only, fp32 and static INT8
    assert {p.drop_blocks for p in digits} == {0}
    assert {p.width for p in digits} == {1.0, 0.75, 0.5, 0.25}
    assert len(digits) == 7  # the teacher at fp32 is the baseline itself
    assert removable_blocks(sensor_model.baseline.module, sensor_model.data.eval.take(slice(0, 2)).inputs) == [
        ["features.8", "features.9"]
    ]
    assert {p.drop_blocks for p in ArchitectureSpace().points(sensor_model)} == {0, 1}
    with pytest.raises(wb.ConfigError, match=r"'layers' applies to transformer encoders"):
        ArchitectureSpace(layers=(2,)).points(digits_model)
    with pytest.raises(wb.ConfigError, match=r"ints in \[0, 0\]"):
        ArchitectureSpace(drop_blocks=(0, 1)).points(digits_model)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("width", (0.0,), "fractions in"),
        ("heads", (), "fractions in"),
        ("layers", (0,), "ints >= 1"),
        ("precision", ("int3",), "'fp32', 'int8-dynamic', 'int8-static'"),
        ("time_budget_s", 0, r"seconds in \(0"),
        ("train_steps", -1, "steps"),
    ],
)
def test_space_refuses_bad_values(field, value, match):
    with pytest.raises(wb.ConfigError, match=match):
        ArchitectureSpace(**{field: value})


def test_architecture_is_its_own_family():
    assert isinstance(SearchSpace.default(["architecture"]), ArchitectureSpace)
    assert SearchSpace.default(["architecture"], architecture__time_budget_s=60).time_budget_s == 60
    with pytest.raises(SearchSpaceError, match="cannot be mixed with 'int4'"):
        SearchSpace.default(["architecture", "int4"])
    with pytest.raises(SearchSpaceError, match="architecture__<field>.*train_steps"):
        SearchSpace.default(["architecture"], architecture__depth=(1,))


# ---- students --------------------------------------------------------------------------------------------
def test_student_that_lost_heads_is_exact_in_onnx_runtime(minilm_model):
    st = apply_pass(
        minilm_model.baseline, wb.Distill(student_layers=2, heads=0.5, width=0.5, steps=0), PassJob(model=minilm_model)
    )
    assert st.meta["distilled"]["heads_per_layer"] == [6] and st.meta["num_heads"] == 6
    layer = st.module.encoder.encoder.layer[0]
    assert layer.attention.self.all_head_size == 192 and layer.intermediate.dense.out_features == 768
    x = minilm_model.data.eval.take(slice(0, 8)).inputs
    ref = st.runner(1)(x)
    onnx = apply_pass(st, wb.OnnxExport(), PassJob(model=minilm_model))
    fused = apply_pass(onnx, INT8_FUSIONS, PassJob(model=minilm_model))
    assert fused.meta["fused_ops"].get("Attention") == 2  # the fusion was told 6 heads, and took them
    assert _cos(fused.runner(1)(x), ref).min() > 0.9999


def test_cnn_student_loses_a_convolution(sensor_model):
    base = sensor_model.baseline
    st = apply_pass(base, wb.Distill(drop_blocks=1, width=1.0, steps=0), PassJob(model=sensor_model))
    assert st.meta["distilled"]["blocks_removed"] == ["features.8", "features.9"]
    assert st.param_count() < base.param_count()
    x = sensor_model.data.eval.take(slice(0, 4)).inputs
    assert np.asarray(st.runner(1)(x)).shape == np.asarray(base.runner(1)(x)).shape
    with pytest.raises(wb.ConfigError, match=r"'drop_blocks' parameter of Distill is 2.*\[0, 1\]"):
        apply_pass(base, wb.Distill(drop_blocks=2, steps=0), PassJob(model=sensor_model))
    with pytest.raises(wb.ConfigError, match="'heads' parameter of Distill applies to transformer"):
        apply_pass(base, wb.Distill(heads=0.5, steps=0), PassJob(model=sensor_model))


# ---- the search ------------------------------------------------------------------------------------------
def _lineage(store, cand):
    chain = [cand]
    while chain[-1].parent_id:
        chain.append(store.get(chain[-1].parent_id))
    return chain


def test_search_times_untrained_then_trains_and_records(tmp_path, digits_model, bench):
    store = wb.RunStore(tmp_path / "runs.sqlite")
    heard = []
    space = SearchSpace.default(["architecture"], **{f"architecture__{k}": v for k, v in SMALL.items()})
    res = search(
        digits_model, Budget(max_accuracy_drop=0.02), space, trials=3, store=store, bench=bench, on_screen=heard.append
    )
    labels = [p.label for p in space.points(digits_model)]
    assert [r["label"] for r in res.screened] == labels and [r["label"] for r in heard] == labels
    for r in res.screened:  # every architecture timed untrained beside the baseline, and its fate said
        assert r["p50_ms"] > 0 and r["baseline_p50_ms"] > 0 and r["size_bytes"] > 0
        assert r["fate"].split(":")[0] in ("dropped", "trained", "not trained"), r
    trained = [r for r in res.screened if r["fate"].startswith("trained")]
    assert 1 <= len(trained) == len(res.trials) <= 3
    assert any("middle of the" in d for d in res.decisions)
    for t in res.trials:  # each trained student is a recorded candidate with its lineage down to the baseline
        c = store.get(t.candidate.id)
        assert c.recipe["steps"][0]["kind"] == "distill" and c.recipe["steps"][0]["steps"] == 60
        assert c.get("accuracy") is not None and c.get("speedup_rounds")
        chain = _lineage(store, c)
        assert chain[-1].id == res.baseline.id and chain[-2].status == "intermediate"
    assert res.best is not None and res.best.get("accuracy_drop") <= 0.02
    assert "architectures untrained" in res.explain()
    # the study beside the run store holds the trials (the report reads them) and the untrained timings
    import optuna

    study = optuna.load_study(study_name=res.study_name, storage=f"sqlite:///{tmp_path / 'search.sqlite'}")
    assert {t.user_attrs["candidate_id"] for t in study.get_trials()} == {t.candidate.id for t in res.trials}
    assert len(study.user_attrs["screened"]) == len(labels)

    # resumed: nothing is timed or trained again
    n = len(store.candidates())
    again = search(digits_model, Budget(max_accuracy_drop=0.02), space, trials=3, store=store, bench=bench)
    assert len(store.candidates()) == n
    assert [r["timed_at"] for r in again.screened] == [r["timed_at"] for r in res.screened]
    assert all(t.reused for t in again.trials) and again.best.id == res.best.id
    study = optuna.load_study(study_name=res.study_name, storage=f"sqlite:///{tmp_path / 'search.sqlite'}")
    assert len(study.get_trials()) == len(res.trials)  # the resumed students are not trials twice


def test_latency_limit_drops_before_training(tmp_path, digits_model, bench):
    space = ArchitectureSpace(width=(1.0, 0.5), precision=("int8-static",), **SMALL)
    res = search(
        digits_model, Budget(max_latency_ms=1e-6), space, trials=3, store=tmp_path / "runs.sqlite", bench=bench
    )
    assert res.trials == [] and res.best is None
    assert all(r["fate"].startswith("dropped: over the 1e-06 ms latency limit by") for r in res.screened)
    assert "Nothing fits" in res.explain()


def test_time_budget_bounds_training(tmp_path, digits_model, bench):
    space = ArchitectureSpace(width=(1.0, 0.5), precision=("fp32",), train_steps=60, time_budget_s=0.5)
    res = search(digits_model, Budget(max_accuracy_drop=0.02), space, store=tmp_path / "runs.sqlite", bench=bench)
    assert res.trials == []
    assert any("not trained: about" in r["fate"] and "s left of the time budget" in r["fate"] for r in res.screened)


def test_cancelled_search_resumes_its_untrained_timings(tmp_path, digits_model, bench):
    ctx = wb.RunContext()
    space = ArchitectureSpace(width=(0.75, 0.5, 0.25), precision=("fp32",), **SMALL)
    seen = []

    def stop_after_two(row):
        seen.append(row)
        if len(seen) == 2:
            ctx.cancel()

    with pytest.raises(wb.CancelledError):
        search(
            digits_model, Budget(max_accuracy_drop=0.02), space, store=tmp_path / "runs.sqlite", bench=bench,
            ctx=ctx, on_screen=stop_after_two,
        )  # fmt: skip
    res = search(digits_model, Budget(max_accuracy_drop=0.02), space, store=tmp_path / "runs.sqlite", bench=bench)
    assert [r["timed_at"] for r in res.screened[:2]] == [r["timed_at"] for r in seen]
    assert res.screened[2]["timed_at"] > seen[1]["timed_at"] and res.best is not None


def test_device_table_from_a_probe_judges_the_latency(tmp_path, digits_model, bench, cli):
    space = ArchitectureSpace(width=(0.75, 0.5, 0.25), precision=("fp32",), **SMALL)
    probe = export_probe(digits_model, tmp_path / "probe", space, runs=5)
    entries = json.loads((probe / "probe.json").read_text())["architectures"]
    assert [e["architecture"] for e in entries] == [p.label for p in space.points(digits_model)]
    done = subprocess.run(
        [sys.executable, str(probe / "run_probe.py"), "--device", "pi-like", "--runs", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    table = json.loads((probe / "latency_table.json").read_text())
    assert table["device"] == "pi-like" and len(table["rows"]) == len(entries)
    assert all(r["max_abs_diff_vs_host"] < 1e-3 for r in table["rows"])
    # a slower device: its numbers, not the host's, decide; the architecture it did not time is predicted
    table["rows"] = [{**r, "p50_ms": 40.0 if "width0.75" in r["architecture"] else 5.0} for r in table["rows"]]
    table["rows"] = [r for r in table["rows"] if "width0.25" not in r["architecture"]]
    res = search(
        digits_model,
        Budget(max_latency_ms=20.0, max_accuracy_drop=0.05),
        space,
        store=tmp_path / "runs.sqlite",
        bench=bench,
        device_table=table,
    )
    rows = {r["label"]: r for r in res.screened}
    assert rows["width0.75 fp32"]["judged_by"] == "pi-like" and rows["width0.75 fp32"]["judged_p50_ms"] == 40.0
    assert rows["width0.75 fp32"]["fate"].startswith("dropped: over the 20 ms latency limit by 20 ms")
    assert rows["width0.25 fp32"]["judged_by"] == "predicted for pi-like"
    assert res.device == "pi-like" and res.best is not None and "on pi-like" in res.explain()
    with pytest.raises(wb.ConfigError, match="measured for model 'digits-cnn' .*not for this 'sensor-cnn'"):
        search("sensor-cnn", Budget(), space, store=tmp_path / "other.sqlite", bench=bench, device_table=table)
    with pytest.raises(wb.ConfigError, match="not a device latency table: it needs 'rows'"):
        read_device_table({"rows": [{"architecture": "x"}]})
    with pytest.raises(wb.ConfigError, match="device latency table.*architecture search"):
        search(digits_model, Budget(), store=tmp_path / "runs.sqlite", device_table=table)


def test_cli_architecture_search(tmp_path, cli):
    out = cli(
        "search", "digits-cnn", "--family", "architecture", "--max-drop", "3", "--threads", "1",
        "--train-steps", "40", "--time-budget", "2", "--trials", "2", "--n-eval", "120", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (
        "untrained  width0.5 fp32" in out.stdout and "fate" in out.stdout and "Best (fastest that fits)" in out.stdout
    )
    bad = cli("search", "digits-cnn", "--time-budget", "2", cwd=tmp_path)
    assert bad.returncode == 2 and "add --family architecture" in bad.stderr
    probe = cli("probe", "digits-cnn", "-o", str(tmp_path / "p"), "--n-eval", "120", cwd=tmp_path)
    assert probe.returncode == 0 and "7 architectures" in probe.stdout
    assert (tmp_path / "p" / "run_probe.py").is_file()


def test_probe_and_device_table_refuse_bad_input(tmp_path, digits_model):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(wb.WorkbenchError, match="exists and is not empty; pass overwrite=True"):
        export_probe(digits_model, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"  # nothing of the user's is touched
    with pytest.raises(wb.ConfigError, match="runs"):
        export_probe(digits_model, tmp_path / "p", runs=0)
    (tmp_path / "table.json").write_text("{not json")
    with pytest.raises(wb.ConfigError, match="is not a device latency table \\(not JSON"):
        read_device_table(tmp_path / "table.json")
    with pytest.raises(wb.ConfigError, match="No device latency table at"):
        read_device_table(tmp_path / "missing.json")
