"""Per-layer profile with a roofline, and "why no speed-up?" findings on real candidates.

The findings are checked on what the graphs hold (which op types run, which nodes stay in float), never
on a kernel's share of one measured profile. The rule that compares measured times (slow-kernels) runs
on fixed synthetic profiles here; bench/bench_profile.py checks it against this CPU's real kernels.
"""

from __future__ import annotations

import importlib

import onnx
import pytest

from workbench import BenchConfig, Recipe
from workbench.measure.explain import why_no_speedup
from workbench.measure.profile import Machine, Profile, machine_roofline, profile, profile_model
from workbench.measure.sensitivity import SelectiveQuant
from workbench.optimize import run_recipe
from workbench.passes import DynamicInt8, OnnxExport, PassJob, StaticInt8, apply_pass

#: a fixed roofline (ridge 5 FLOP/byte), so which layers are memory- or compute-bound does not move with
#: what this machine measured
ROOF = Machine(peak_gflops=50.0, bandwidth_gbs=10.0, threads=1)


def test_machine_roofline_is_measured_once_per_thread_count():
    m = machine_roofline(1)
    assert m.threads == 1 and m.peak_gflops > 0 and m.bandwidth_gbs > 0
    assert m.ridge == pytest.approx(m.peak_gflops / m.bandwidth_gbs)
    assert machine_roofline(1) == m  # cached: the second call measures nothing


def test_profile_breaks_down_time_and_size_against_roofline(digits_model, tmp_path):
    onnx_art = apply_pass(digits_model.baseline, OnnxExport(), PassJob(model=digits_model, workdir=tmp_path))
    prof = profile(onnx_art.path, digits_model.bench_inputs(), threads=1, runs=10, machine=ROOF)
    assert prof.machine == ROOF and prof.runs == 10
    assert sum(r["share"] for r in prof.rows) == pytest.approx(1.0)
    assert [r["time_us"] for r in prof.rows] == sorted((r["time_us"] for r in prof.rows), reverse=True)
    # the big Linear (1024 -> 128) at batch 1 reads each weight once: about 0.5 FLOP/byte, memory-bound
    gemm = next(r for r in prof.rows if "classifier.1" in r["node"])
    assert gemm["param_bytes"] == 4 * (1024 * 128 + 128)
    assert gemm["intensity"] == pytest.approx(0.5, abs=0.05) and gemm["bound"] == "memory-bound"
    # the second 3x3 conv reuses each weight 64 times: far more FLOPs per byte, past the ridge
    conv = max((r for r in prof.rows if r["op_type"] in ("Conv", "FusedConv")), key=lambda r: r["param_bytes"])
    conv2d = digits_model.baseline.module.features[2]
    assert conv["param_bytes"] == 4 * (conv2d.weight.numel() + conv2d.bias.numel())
    assert conv["intensity"] > 10 * gemm["intensity"] and conv["bound"] == "compute-bound"
    assert all(r["bound"] == ("compute-bound" if r["intensity"] >= ROOF.ridge else "memory-bound") for r in prof.rows)
    # weight bytes add up to the model's float parameters
    n_params = sum(p.numel() for p in digits_model.baseline.module.parameters())
    assert sum(r["param_bytes"] for r in prof.rows) == pytest.approx(4 * n_params, rel=0.01)
    spec = prof.chart().to_dict()
    assert len(spec["layer"]) == 2


def test_profile_model_exports_a_torch_baseline(digits_model):
    prof = profile_model(digits_model, threads=1, runs=3)
    assert prof.machine == machine_roofline(1)
    # the graph ORT runs: the two convolutions, the two Linear layers (the first fused with its ReLU)
    ops = sorted(r["op_type"] for r in prof.rows if r["param_bytes"])
    assert ops == ["Conv", "Conv", "FusedGemm", "Gemm"]


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


def _ops(cand) -> list[str]:
    return [n.op_type for n in onnx.load(cand.artifact_path).graph.node]


def test_why_no_speedup_dynamic_int8(digits_model, cands):
    exp = why_no_speedup(cands["dyn"], cands["fp32"], digits_model, threads=1, runs=5)
    assert "dynamic-quant" in exp.kinds()
    # ORT fuses the Linear layers' run-time quantization into DynamicQuantizeMatMul; each ConvInteger keeps
    # its own DynamicQuantizeLinear in front
    n_conv = _ops(cands["dyn"]).count("ConvInteger")
    assert n_conv == 2
    (f,) = [f for f in exp.findings if f.kind == "dynamic-quant"]
    assert f.message.startswith(f"activations are quantized at run time by {n_conv} DynamicQuantizeLinear node(s)")
    assert exp.speedup == pytest.approx(cands["fp32"].get("p50_ms") / cands["dyn"].get("p50_ms"))
    assert str(exp).startswith(f"Candidate {cands['dyn'].id}")


def _fixed_profile(path, conv_op: str, conv_us: float) -> Profile:
    rows = [
        {"node": "conv", "op_type": conv_op, "time_us": conv_us},
        {"node": "fc", "op_type": "Gemm", "time_us": 50.0},
    ]
    total = sum(r["time_us"] for r in rows)
    for r in rows:
        r.update(share=r["time_us"] / total, param_bytes=0, intensity=0.0, achieved_gflops=0.0, bound="memory-bound")
    return Profile(str(path), ROOF, rows, runs=5, wall_ms=total / 1e3)


@pytest.mark.parametrize(
    ("int8_us", "named"), [(300.0, True), (105.0, False), (60.0, False)], ids=["3x-slower", "within-10pct", "faster"]
)
def test_why_no_speedup_names_slow_kernels_from_measured_times(monkeypatch, digits_model, cands, int8_us, named):
    """The rule on fixed times: integer convolutions more than 10% slower than the float ones are named."""
    fixed = {
        cands["dyn"].artifact_path: _fixed_profile(cands["dyn"].artifact_path, "ConvInteger", int8_us),
        cands["fp32"].artifact_path: _fixed_profile(cands["fp32"].artifact_path, "Conv", 100.0),
    }
    monkeypatch.setattr(
        importlib.import_module("workbench.measure.explain"), "profile", lambda path, *a, **kw: fixed[path]
    )
    exp = why_no_speedup(cands["dyn"], cands["fp32"], digits_model, threads=1)
    slow = [f for f in exp.findings if f.kind == "slow-kernels"]
    if named:
        (f,) = slow
        assert f.share == pytest.approx(int8_us / 100.0)
        assert f"the Conv layers now run as ConvInteger and take {int8_us:.0f} µs against 100 µs" in f.message
    else:
        assert slow == []
    assert "overhead" not in exp.kinds()  # the fixed profiles' kernels fill the whole run


def test_why_no_speedup_float_ops_left(digits_model, cands):
    # static INT8 on the convolutions only: the Linear layers (two Gemm nodes) stay in float
    gemms = [n.name for n in onnx.load(cands["qdq"].artifact_path).graph.node if n.op_type == "Gemm"]
    assert gemms == ["/classifier/classifier.1/Gemm", "/classifier/classifier.3/Gemm"]
    exp = why_no_speedup(cands["qdq"], cands["fp32"], digits_model, threads=1, runs=5)
    (f,) = [f for f in exp.findings if f.kind == "float-ops"]
    assert f.message.startswith("2 compute op(s) were left in float")
    assert all(name in f.message for name in gemms), f.message
    (q,) = [f for f in exp.findings if f.kind == "qdq"]
    assert q.message.startswith("4 QuantizeLinear/DequantizeLinear node(s) were not fused")


def test_why_no_speedup_sparsity_dense_kernels_ignore(digits_model, cands):
    exp = why_no_speedup(cands["pruned"], cands["fp32"], digits_model, threads=1, runs=5)
    (f,) = [f for f in exp.findings if f.kind == "sparsity"]
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
    # named from the graph, whatever share of this run's time the kernels took: one per encoder sublayer
    (f,) = [f for f in skip.findings if "SkipLayerNormalization" in f.message]
    assert f.kind == "slow-kernels" and f.message.startswith("12 SkipLayerNormalization node(s) take")
    assert "rebuild with OrtOptimize(skip_layernorm=False)" in f.message
    assert not any("SkipLayerNormalization" in f.message for f in split.findings)
