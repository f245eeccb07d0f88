"""The pipeline end to end on real models: candidates measured, recorded, reused; failures recorded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import workbench as wb
from workbench.data.splits import Split, TaskData


def test_digits_end_to_end(digits_model, store, fast_bench):
    recipes = ["ort-fp32", "ort-int8-dynamic", "ort-int8-static", "bf16", "int4-weight-only"]
    cands = wb.optimize(digits_model, recipes, store=store, bench=fast_bench)
    assert [c.recipe_name for c in cands] == ["baseline", *recipes]
    assert all(c.status == "ok" for c in cands), [(c.recipe_name, c.error) for c in cands]
    base = cands[0]
    assert base.metrics["accuracy"] > 0.95
    for c in cands[1:]:
        m = c.metrics
        assert m["agreement"] >= 0.97, (c.recipe_name, m)
        assert abs(m["accuracy_drop"]) <= 0.02
        assert len(m["samples_ms"]) == fast_bench.runs and m["p50_ms"] <= m["p90_ms"] <= m["p99_ms"]
        assert m["peak_mem_bytes"] > 0 and m["params"] > 0
        assert c.artifact_sha256 and c.parent_id is not None
        assert c.env["libraries"]["onnxruntime"] and c.threads == fast_bench.effective_threads
    by = {c.recipe_name: c for c in cands}
    assert by["ort-int8-static"].metrics["size_bytes"] < 0.4 * base.metrics["size_bytes"]
    assert by["bf16"].metrics["size_bytes"] < 0.6 * base.metrics["size_bytes"]
    # lineage: baseline -> export -> static-int8; the export step is ort-fp32's candidate, reused
    chain = store.lineage(by["ort-int8-static"].id)
    assert [c.id for c in chain] == [base.id, by["ort-fp32"].id, by["ort-int8-static"].id]
    assert chain[1].recipe["steps"] == [wb.OnnxExport().to_dict()]
    # the shared export prefix was built once and reused by the other ONNX recipes
    exports = [
        c for c in store.candidates(include_intermediate=True) if c.recipe["steps"] == [wb.OnnxExport().to_dict()]
    ]
    assert len(exports) == 1


def test_rerun_reuses_store_and_no_reuse_makes_new_records(digits_model, store, fast_bench):
    first = wb.optimize(digits_model, ["ort-int8-dynamic"], store=store, bench=fast_bench)
    again = wb.optimize(digits_model, ["ort-int8-dynamic"], store=store, bench=fast_bench)
    assert [c.id for c in again] == [c.id for c in first]
    fresh = wb.optimize(digits_model, ["ort-int8-dynamic"], store=store, bench=fast_bench, reuse=False)
    assert {c.id for c in fresh}.isdisjoint(c.id for c in first)
    # accuracy is a pure function of model + recipe + data: identical on a rerun
    assert fresh[1].metrics["accuracy"] == first[1].metrics["accuracy"]


def test_static_quantization_without_calibration_data(store, fast_bench):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 4))
    x = np.random.default_rng(0).standard_normal((32, 8)).astype(np.float32)
    data = TaskData(train=None, eval=Split({"x": x}, np.zeros(32, np.int64)), calibration=None)
    model = wb.from_module(net, data, name="no-calib")
    cands = wb.optimize(model, ["ort-int8-static"], store=store, bench=fast_bench)
    assert cands[1].status == "failed"
    assert "needs calibration data" in cands[1].error and "dynamic-int8" in cands[1].error
    assert cands[0].status == "ok"  # the baseline recorded before is untouched


class _Loud(__import__("torch").nn.Module):
    """Activations beyond fp16's range (65504): an fp16 cast overflows to inf."""

    def __init__(self):
        import torch

        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        with torch.no_grad():
            self.lin.weight.fill_(1e5)

    def forward(self, x):
        return self.lin(x)


def test_non_finite_outputs_mark_candidate_failed(store, fast_bench):
    x = np.ones((16, 4), np.float32)
    data = TaskData(train=None, eval=Split({"x": x}, np.zeros(16, np.int64)), calibration=None)
    model = wb.from_module(_Loud(), data, name="loud")
    base, fp16 = wb.optimize(model, ["fp16"], store=store, bench=fast_bench)
    assert base.status == "ok"
    assert fp16.status == "failed" and "non-finite" in fp16.error
    assert store.get(fp16.id).status == "failed"


def test_cancel_is_recorded_and_stops_the_run(digits_model, store, fast_bench):
    ctx = wb.RunContext()
    seen = []

    def cancel_during_export(ev):
        seen.append(ev.stage)
        if "onnx-export" in ev.stage:
            ctx.cancel()

    ctx.add_listener(cancel_during_export)
    with pytest.raises(wb.CancelledError):
        wb.optimize(digits_model, ["ort-int8-dynamic", "bf16"], store=store, bench=fast_bench, ctx=ctx)
    statuses = [c.status for c in store.candidates(include_intermediate=True)]
    assert statuses == ["ok", "cancelled"]
    # the cancelled export left nothing behind: no half-written .tmp folder, no artifact
    left = sorted(p.name for p in store.artifacts_dir.iterdir()) if store.artifacts_dir.exists() else []
    assert left == []


def test_invalid_recipe_rejected_before_any_work(digits_model, store):
    with pytest.raises(wb.UnknownNameError):
        wb.optimize(digits_model, ["ort-fp32", "no-such-recipe"], store=store)
    assert store.candidates() == []


@pytest.mark.slow
def test_minilm_int8_keeps_accuracy(minilm_model, store, fast_bench):
    base, dyn = wb.optimize(minilm_model, ["ort-int8-dynamic"], store=store, bench=fast_bench)
    assert base.metrics["accuracy"] > 0.93
    assert dyn.status == "ok", dyn.error
    assert dyn.metrics["cosine"] > 0.99 and dyn.metrics["cosine_min"] > 0.97
    assert dyn.metrics["accuracy_drop"] <= 0.02
    assert dyn.metrics["size_bytes"] < 0.3 * base.metrics["size_bytes"]
    assert dyn.notes["fused_ops"]["Attention"] == 6  # transformer fusions applied before quantizing


@pytest.mark.slow
def test_minilm_fusions_keep_residual_layernorm_apart_and_onnxruntime_honours_it(minilm_model, tmp_path):
    """ORT's CPU SkipLayerNormalization is slower than Add + LayerNormalization: the fused graph keeps them
    apart, carries a load hint, and every session the workbench opens (runner, profiler, bundle) applies it."""
    import json

    import onnx

    from workbench.core.artifact import session_hints
    from workbench.passes import PassJob, apply_pass

    def job():  # each pass writes into its own folder
        return PassJob(model=minilm_model)

    exported = apply_pass(minilm_model.baseline, wb.OnnxExport(), job())
    split = apply_pass(exported, wb.OrtOptimize(), job())
    fused = apply_pass(exported, wb.OrtOptimize(skip_layernorm=True), job())
    ops = lambda a: Counter(n.op_type for n in onnx.load(str(a.path)).graph.node)
    assert ops(split)["SkipLayerNormalization"] == 0 and ops(split)["LayerNormalization"] == 12
    assert ops(fused)["SkipLayerNormalization"] == 12
    assert session_hints(split.path) == {"disabled_optimizers": ["SkipLayerNormFusion"]}
    assert session_hints(fused.path) == {"disabled_optimizers": []}
    # the hint survives quantization, and both graphs compute the same embeddings
    q = apply_pass(split, wb.DynamicInt8(), job())
    assert session_hints(q.path)["disabled_optimizers"] == ["SkipLayerNormFusion"]
    inputs = minilm_model.bench_inputs()
    np.testing.assert_allclose(split.runner(1)(inputs), fused.runner(1)(inputs), atol=1e-4)
    # ONNX Runtime really loads it unfused: its own optimized graph has no SkipLayerNormalization
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "as_loaded.onnx")
    ort.InferenceSession(str(split.path), so, providers=["CPUExecutionProvider"], **session_hints(split.path))
    assert (
        Counter(n.op_type for n in onnx.load(str(tmp_path / "as_loaded.onnx")).graph.node)["SkipLayerNormalization"]
        == 0
    )
    # and a device bundle carries the hint to the device
    store = wb.RunStore(tmp_path / "runs.sqlite")
    _, cand = wb.optimize(minilm_model, ["ort-optimized"], store=store, bench=wb.BenchConfig(warmup=1, runs=2))
    from workbench.deploy.bundle import export_bundle

    out = export_bundle(cand, tmp_path / "bundle", minilm_model)
    assert json.loads((out / "manifest.json").read_text())["disabled_optimizers"] == ["SkipLayerNormFusion"]


@pytest.mark.slow
def test_minilm_static_int8_auto_exclusion_beats_naive(minilm_model, store, fast_bench):
    """Naive all-MatMul static INT8 collapses MiniLM; excluding sensitive MatMuls keeps it."""
    naive = wb.Recipe("naive-static", (wb.OnnxExport(), wb.StaticInt8(exclude="none", samples=16)))
    safe = wb.Recipe("safe-static", (wb.OnnxExport(), wb.StaticInt8(samples=16)))
    _, bad, good = wb.optimize(minilm_model, [naive, safe], store=store, bench=fast_bench)
    assert good.status == "ok" and good.metrics["cosine"] > 0.98, good.metrics
    assert bad.metrics["cosine"] < good.metrics["cosine"] - 0.02
    assert len(good.notes["excluded_nodes"]) == 18  # 6 layers x (Q.K^T, probs.V, FFN down-projection)
