"""Edge formats: ExecuTorch (.pte) and LiteRT (.tflite) candidates, built by registered passes, measured with their
own runtimes, recorded, explained by their delegation report, and bundled for a device. digits-cnn keeps it quick."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.core.edge_runtime import edge_runtime_missing
from workbench.measure.delegation import DelegationReport
from workbench.passes import ExecuTorchExport, LiteRTExport, PassJob, apply_pass

_MISSING = [why for why in (edge_runtime_missing("executorch"), edge_runtime_missing("litert")) if why]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason="; ".join(_MISSING) or "edge runtimes installed")

RECIPES = ("executorch-int8", "litert-int8-dynamic", "litert-int8")


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory):
    return wb.RunStore(tmp_path_factory.mktemp("edge") / "runs.sqlite")


@pytest.fixture(scope="module")
def bench():
    return wb.BenchConfig(warmup=2, runs=5, threads=1)


@pytest.fixture(scope="module")
def cands(digits_model, edge_store, bench):
    base = wb.run_baseline(digits_model, store=edge_store, bench=bench)
    out = {"baseline": base}
    for r in RECIPES:
        out[r] = wb.run_recipe(digits_model, r, store=edge_store, baseline=base, bench=bench)
    return out


@pytest.mark.parametrize(
    "recipe, runtime, suffix, precision",
    [
        ("executorch-int8", "executorch", ".pte", "int8-static"),
        ("litert-int8-dynamic", "litert", ".tflite", "int8-dynamic"),
        ("litert-int8", "litert", ".tflite", "int8-static"),
    ],
    ids=["executorch-int8", "litert-int8-dynamic", "litert-int8"],
)
def test_edge_candidate_is_measured_with_its_runtime_and_recorded(
    cands, edge_store, digits_model, recipe, runtime, suffix, precision
):
    c = cands[recipe]
    assert c.status == "ok", c.error
    assert c.runtime == runtime and c.artifact_path.endswith(suffix)
    m = c.metrics
    # task accuracy with its CI, fidelity to FP32, latency percentiles at the chosen threads, memory, size
    assert m["accuracy"] > 0.9 and m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
    assert m["fidelity"] > 0.9
    assert 0 < m["p50_ms"] <= m["p90_ms"] and len(m["samples_ms"]) == 5 and m["threads"] == 1
    assert m["peak_mem_bytes"] and m["peak_mem_bytes"] > 0
    assert m["size_bytes"] == os.path.getsize(c.artifact_path)
    assert m["size_bytes"] < 0.4 * cands["baseline"].metrics["size_bytes"]  # INT8 weights: about a quarter
    assert m["params"] == digits_model.baseline.param_count()
    assert c.notes["precision"] == precision and c.notes["parity_max_abs_diff"] >= 0
    # the record in the store is the one returned, and it is found again by its recipe
    assert edge_store.get(c.id).metrics["p50_ms"] == m["p50_ms"]
    assert (
        wb.optimize(digits_model, [recipe], store=edge_store, bench=wb.BenchConfig(warmup=2, runs=5, threads=1))[1].id
        == c.id
    )


def test_executorch_delegation_report_comes_from_etdump(cands):
    rep = cands["executorch-int8"].notes["delegation"]
    assert rep["format"] == "executorch" and rep["fully_delegated"] and rep["fallback_ops"] == []
    kernels = {r["op_type"] for r in rep["rows"]}
    # XNNPACK's own INT8 kernels, named as ETDump records them
    assert "Convolution (NHWC, QC8) IGEMM" in kernels and any("QS8" in k for k in kernels)
    assert all(r["delegated"] for r in rep["rows"]) and rep["fallback_share"] == 0
    # shares of the whole run: the kernels' and the runtime's own per-call work make it up (how much is the
    # runtime's depends on the CPU: 43 % kernels on an AVX-512 EPYC, over half on an AVX2 one)
    assert 0 < rep["delegated_share"] <= 1.0 and rep["delegated_share"] + rep["overhead_share"] == pytest.approx(1)
    assert f"{100 * rep['delegated_share']:.0f}% of the run" in DelegationReport.from_dict(rep).summary()
    assert "ETDump" in rep["how"] and rep["run_ms"] > 0


def test_litert_reports_the_operator_that_left_the_delegate(cands):
    dyn = cands["litert-int8-dynamic"].notes
    rep = dyn["delegation"]
    # XNNPACK has no dynamic-range depthwise convolution: that one operator runs on LiteRT's builtin kernel
    assert rep["fallback_ops"] == ["DEPTHWISE_CONV_2D"] and not rep["fully_delegated"] and not dyn["fully_delegated"]
    assert [r["op_type"] for r in rep["rows"] if not r["delegated"]] == ["DEPTHWISE_CONV_2D"]
    assert 0 < rep["fallback_share"] < 1 and abs(sum(r["share"] for r in rep["rows"]) - 1) < 1e-6
    full = cands["litert-int8"].notes
    assert full["delegation"]["fully_delegated"] and full["quantized_inputs"] and full["input_types"] == ["int8"]


def test_why_no_speedup_names_the_fallback(cands, digits_model):
    from workbench.measure.explain import why_no_speedup

    exp = why_no_speedup(cands["litert-int8-dynamic"], cands["baseline"], digits_model, threads=1)
    assert {"delegate-fallback", "dynamic-quant", "runtime"} <= exp.kinds()
    fb = next(f for f in exp.findings if f.kind == "delegate-fallback")
    assert "DEPTHWISE_CONV_2D" in fb.message and "LiteRT's builtin kernels" in fb.message and 0 < fb.share < 1
    # against its own format's INT8 sibling the explanation reads both delegation reports: no cross-runtime note
    other = why_no_speedup(cands["litert-int8-dynamic"], cands["litert-int8"], None)
    assert "runtime" not in other.kinds() and "delegate-fallback" in other.kinds()
    assert "delegate-fallback" not in why_no_speedup(cands["executorch-int8"], cands["baseline"], None).kinds()


def test_parity_failure_carries_the_numbers(digits_model, tmp_path):
    with pytest.raises(wb.ParityError, match=r"max abs diff .* > tolerance atol 1e-12 over 4 samples") as e:
        apply_pass(
            digits_model.baseline,
            LiteRTExport(atol=1e-12, parity_samples=4, profile_runs=0),
            PassJob(model=digits_model, workdir=tmp_path / "o", threads=1),
        )
    assert e.value.max_abs_diff > 1e-12 and e.value.atol == 1e-12
    assert not (tmp_path / "o").exists()  # nothing half-written survives


class _Branchy(torch.nn.Module):
    """Takes a different path depending on the input's values: torch.export cannot capture one graph for it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, pixels):
        if pixels.mean() > 0:  # data-dependent control flow
            return self.inner(pixels)
        return -self.inner(pixels)


@pytest.mark.parametrize("cfg", [LiteRTExport(profile_runs=0), ExecuTorchExport(profile_runs=0)], ids=["litert", "et"])
def test_a_model_that_cannot_convert_names_the_construct_and_a_recipe_that_works(digits_model, tmp_path, cfg):
    import copy

    art = wb.torch_artifact(_Branchy(copy.deepcopy(digits_model.baseline.module)), ("pixels",))
    model = dataclasses.replace(digits_model, baseline=art)
    with pytest.raises(wb.PassError) as e:
        apply_pass(art, cfg, PassJob(model=model, workdir=tmp_path / "o", threads=1))
    msg = str(e.value)
    assert "capturing the model with torch.export" in msg and "data-dependent" in msg and "test_edge.py" in msg
    assert "ort-fp32" in msg  # the recipe that would work: the ONNX exporter traces one path


def test_chain_after_pruning_runs_torch_steps_first(digits_model, tmp_path):
    recipe = wb.get_recipe("prune-structured-litert-int8")
    assert [s.produces for s in recipe.steps] == ["torch", "litert"]
    recipe.validate_for("torch")
    # a quick chain of the same shape: prune (no fine-tuning) in PyTorch, then convert the pruned module
    chain = wb.Recipe(
        "prune-litert", (wb.StructuredPrune(sparsity=0.5, finetune_steps=0), LiteRTExport(profile_runs=2))
    )
    store = wb.RunStore(tmp_path / "runs.sqlite")
    c = wb.run_recipe(digits_model, chain, store=store, bench=wb.BenchConfig(warmup=1, runs=3, threads=1))
    assert c.status in ("ok", "degraded"), c.error
    assert c.runtime == "litert" and c.metrics["params"] < 0.6 * digits_model.baseline.param_count()
    parent = store.get(c.parent_id)
    assert parent.status == "intermediate" and parent.runtime == "torch"
    with pytest.raises(wb.RecipeError, match="needs a torch model"):
        wb.Recipe("bad", (LiteRTExport(), wb.StructuredPrune())).validate_for("torch")


def _run_isolated(script, cwd, blocked):
    """Run a bundle's runner with ``blocked`` packages made unimportable: what it needs is only its runtime."""
    code = (
        "import sys, runpy\n"
        f"for m in {list(blocked)!r}: sys.modules[m] = None\n"
        "sys.argv = ['run_bench.py', '--runs', '7', '--warmup', '1']\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    return subprocess.run([sys.executable, "-I", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "recipe, blocked",
    [
        ("litert-int8", ("workbench", "torch", "onnxruntime", "executorch")),
        ("executorch-int8", ("workbench", "onnxruntime", "ai_edge_litert", "litert_torch")),
    ],
    ids=["litert", "executorch"],
)
def test_device_bundle_runs_with_only_its_runtime_and_imports_back(
    cands, edge_store, digits_model, tmp_path, recipe, blocked
):
    from workbench.deploy.bundle import device_measurements, export_bundle, import_bundle_result

    c = cands[recipe]
    out = export_bundle(c, tmp_path / "b", digits_model, threads=1, runs=10)
    man = json.loads((out / "manifest.json").read_text())
    assert man["runtime"] == c.runtime and man["input_names"] == ["pixels"]
    assert [p.name for p in (out / "model").iterdir()] == [man["model_file"]]
    r = _run_isolated(out / "run_bench.py", out, blocked)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert len(result["samples_ms"]) == 7 and result["max_abs_diff_vs_host"] < 1e-4
    assert result["artifact_sha256"] == c.artifact_sha256 and result["device"]["runtime"] == c.runtime
    dev = import_bundle_result(out / "result.json", edge_store, device_name="pi")
    assert dev.parent_id == c.id and dev.recipe_name == f"{recipe} @ pi" and dev.get("accuracy") == c.get("accuracy")
    assert [row["where"] for row in device_measurements(edge_store, c.id)][-1] == "pi"


def test_runner_handles_any_batch_and_quantized_io(cands, digits_model):
    art = wb.Artifact("litert", ("pixels",), path=Path(cands["litert-int8"].artifact_path))
    x = digits_model.data.eval.take(slice(0, 5)).inputs
    y = art.runner(1)(x)
    assert y.shape == (5, 10) and y.dtype == np.float32  # dequantized INT8 outputs, one example at a time
    assert (y.argmax(1) == digits_model.reference_outputs()[:5].argmax(1)).mean() >= 0.8


def test_panel_settings_make_the_edge_recipes(digits_model):
    from workbench.recipes.compose import build_recipe

    for precision, fmt, name in [
        ("fp32", "executorch", "executorch-fp32"),
        ("int8-static", "executorch", "executorch-int8"),
        ("int8-dynamic", "litert", "litert-int8-dynamic"),
        ("int8-static", "litert", "litert-int8"),
    ]:
        r = build_recipe(precision, format=fmt)
        # the same steps as the shipped recipe: a panel setting finds the candidate the CLI measured
        assert r.name == name and r.to_dict()["steps"] == wb.get_recipe(name).to_dict()["steps"]
    with pytest.raises(wb.ConfigError, match="'format' parameter .* one of 'onnx', 'executorch', 'litert'"):
        build_recipe("int8-static", format="coreml")
    with pytest.raises(wb.ConfigError, match="executorch: FP32 or INT8 static"):
        build_recipe("int4", format="executorch")


def test_quantization_panel_offers_the_target_format():
    from widgets.settings import QuantizationPanel
    from workbench.recipes.compose import build_recipe

    q = QuantizationPanel()
    assert [v for _, v in q.format.options] == ["onnx", "executorch", "litert"] and q.format in q.controls
    q.format.value, q.precision.value = "litert", "int8-static"
    assert q._samples_box.layout.display != "none" and q._calibration_box.layout.display == "none"
    assert build_recipe(**q.settings()).name == "litert-int8"
    q.format.value, q.precision.value = "executorch", "int4"
    assert "executorch has no INT4" in q.format_help.value
    with pytest.raises(wb.ConfigError, match="with format='executorch'"):
        build_recipe(**q.settings())


def test_edge_candidates_are_drawn_in_the_charts(cands):
    from workbench.report.charts import candidates_frame, tradeoff_chart

    every = list(cands.values())
    points = tradeoff_chart(every).to_dict()
    text = json.dumps(points)
    assert '"executorch"' in text and '"litert"' in text  # one shape per runtime
    frame = candidates_frame(every)
    assert set(frame["runtime"]) == {"torch", "executorch", "litert"}
    assert frame.loc[frame["recipe"] == "litert-int8", "p50_ms"].item() > 0


def test_an_edge_candidate_is_retimed_with_its_own_runtime(cands, edge_store, digits_model, bench):
    from workbench.remeasure import remeasure

    c = cands["litert-int8"]
    (r,) = remeasure([c.id], store=edge_store, model=digits_model, bench=bench)
    now = edge_store.get(c.id)
    assert now.runtime == "litert" and now.get("retimed") == 1 and len(now.get("samples_ms")) == 5
    assert now.get("compared_with")["id"] == cands["baseline"].id
    assert now.get("first_timing")["p50_ms"] == c.get("p50_ms") and now.get("accuracy") == c.get("accuracy")
