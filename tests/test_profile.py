"""Per-layer profile with a roofline, and "why no speed-up?" findings on real candidates."""

from __future__ import annotations

import pytest

from workbench import BenchConfig, Recipe
from workbench.optimize import run_recipe
from workbench.passes import DynamicInt8, OnnxExport, StaticInt8
from workbench.profile import machine_roofline, profile_model, why_no_speedup
from workbench.sensitivity import SelectiveQuant


def test_profile_breaks_down_time_and_size_against_roofline(digits_model):
    m = machine_roofline(1)
    assert m.peak_gflops > 1 and m.bandwidth_gbs > 0.5 and m.ridge > 0.1
    prof = profile_model(digits_model, threads=1, runs=10)
    rows = {r["node"]: r for r in prof.rows}
    assert sum(r["share"] for r in prof.rows) == pytest.approx(1.0)
    # the big Linear (1024 -> 128) at batch 1 reads each weight once: about 0.5 FLOP/byte, memory-bound
    gemm = next(r for r in prof.rows if "classifier.1" in r["node"])
    assert gemm["param_bytes"] == 4 * (1024 * 128 + 128)
    assert gemm["intensity"] == pytest.approx(0.5, abs=0.05) and gemm["bound"] == "memory-bound"
    # the second 3x3 conv reuses each weight 64 times: far more FLOPs per byte
    conv = max((r for r in prof.rows if r["op_type"] in ("Conv", "FusedConv")), key=lambda r: r["param_bytes"])
    assert conv["intensity"] > 10 * gemm["intensity"]
    assert conv["bound"] == ("compute-bound" if conv["intensity"] >= m.ridge else "memory-bound")
    # weight bytes add up to the model's float parameters
    n_params = sum(p.numel() for p in digits_model.baseline.module.parameters())
    assert sum(r["param_bytes"] for r in prof.rows) == pytest.approx(4 * n_params, rel=0.01)
    assert rows and prof.kernel_ms > 0 and prof.wall_ms > 0
    spec = prof.chart().to_dict()
    assert len(spec["layer"]) == 2


@pytest.fixture(scope="module")
def cands(digits_model, tmp_path_factory):
    from workbench import RunStore

    store = RunStore(tmp_path_factory.mktemp("prof") / "runs.sqlite")
    bench = BenchConfig(warmup=2, runs=5, threads=1)
    mk = lambda name, *steps: run_recipe(digits_model, Recipe(name, (OnnxExport(), *steps)), store=store, bench=bench)
    return {
        "fp32": mk("fp32"),
        "dyn": mk("dyn", DynamicInt8()),
        "qdq": mk("qdq", StaticInt8(format="qdq", op_types=("Conv",))),
        "pruned": mk("pruned", SelectiveQuant("prune", sparsity=0.5)),
    }


def test_why_no_speedup_dynamic_int8(digits_model, cands):
    exp = why_no_speedup(cands["dyn"], cands["fp32"], digits_model, threads=1, runs=5)
    assert "dynamic-quant" in exp.kinds()
    f = next(f for f in exp.findings if f.kind == "dynamic-quant")
    assert 0 < f.share < 1 and "DynamicQuantizeLinear" in f.message
    # ConvInteger has no fast kernel: the integer convolutions take longer than the float ones did
    slow = next(f for f in exp.findings if f.kind == "slow-kernels")
    assert "ConvInteger" in slow.message and slow.share > 1.1
    assert exp.speedup == pytest.approx(cands["fp32"].get("p50_ms") / cands["dyn"].get("p50_ms"))
    assert str(exp).startswith(f"Candidate {cands['dyn'].id}")


def test_why_no_speedup_float_ops_left(digits_model, cands):
    # static INT8 on the convolutions only: the Linear layers stay in float
    exp = why_no_speedup(cands["qdq"], cands["fp32"], digits_model, threads=1, runs=5)
    assert "float-ops" in exp.kinds()
    assert "Gemm" in next(f for f in exp.findings if f.kind == "float-ops").message or any(
        f.kind == "float-ops" and f.share > 0 for f in exp.findings
    )


def test_why_no_speedup_sparsity_dense_kernels_ignore(digits_model, cands):
    exp = why_no_speedup(cands["pruned"], cands["fp32"], digits_model, threads=1, runs=5)
    f = next(f for f in exp.findings if f.kind == "sparsity")
    assert f.share == pytest.approx(0.5, abs=0.01) and "dense" in f.message
    none = why_no_speedup(cands["fp32"], cands["fp32"], digits_model, threads=1, runs=5)
    assert "sparsity" not in none.kinds() and "dynamic-quant" not in none.kinds()


@pytest.mark.slow
def test_why_no_speedup_names_the_slow_skip_layernorm_kernel(minilm_model, tmp_path):
    """MiniLM fused the onnxruntime.transformers way (SkipLayerNormalization) against the workbench default."""
    from workbench import OrtOptimize, RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    bench = BenchConfig(warmup=2, runs=5, threads=2)
    mk = lambda name, *steps: run_recipe(minilm_model, Recipe(name, (OnnxExport(), *steps)), store=store, bench=bench)
    skip = why_no_speedup(mk("skip", OrtOptimize(skip_layernorm=True)), mk("fp32"), minilm_model, runs=5)
    split = why_no_speedup(mk("split", OrtOptimize()), mk("fp32"), minilm_model, runs=5)
    msgs = [f.message for f in skip.findings if f.kind == "slow-kernels"]
    assert any("12 SkipLayerNormalization" in m and "skip_layernorm=False" in m for m in msgs), skip.findings
    assert not any("SkipLayerNormalization" in f.message for f in split.findings)
