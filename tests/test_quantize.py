"""Quantization passes on a real model: every calibration method and format, granularity, INT4."""

from __future__ import annotations

import onnx
import pytest

import workbench as wb
from workbench.measure.evaluate import predict
from workbench.passes import PassJob, apply_pass


@pytest.fixture(scope="module")
def digits_onnx(digits_model, tmp_path_factory):
    return apply_pass(
        digits_model.baseline, wb.OnnxExport(), PassJob(model=digits_model, workdir=tmp_path_factory.mktemp("e"))
    )


def _score(model, art):
    out = predict(art.runner(), model.data.eval)
    return model.task.metrics(out, model.data.eval.labels, model.reference_outputs())


@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_static_int8_methods_and_formats(digits_model, digits_onnx, tmp_path, calibration, fmt):
    cfg = wb.StaticInt8(calibration=calibration, format=fmt, samples=32)
    out = apply_pass(digits_onnx, cfg, PassJob(model=digits_model, workdir=tmp_path / "q"))
    ops = {n.op_type for n in onnx.load(str(out.path)).graph.node}
    if fmt == "qdq":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    else:  # operator format: the convolutions and the Linear layers run as integer operators, none in float
        assert {"QLinearConv", "QGemm"} <= ops and not ops & {"Conv", "Gemm", "MatMul"}, ops
    m = _score(digits_model, out)
    assert m["agreement"] >= 0.95 and m["accuracy"] >= 0.93, m
    assert out.meta["calibration_samples"] == 32
    assert out.size_bytes() < 0.45 * digits_onnx.size_bytes()


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_dynamic_int8_granularity(digits_model, digits_onnx, tmp_path, per_channel):
    out = apply_pass(
        digits_onnx, wb.DynamicInt8(per_channel=per_channel), PassJob(model=digits_model, workdir=tmp_path)
    )
    assert out.meta["granularity"] == ("per-channel" if per_channel else "per-tensor")
    assert _score(digits_model, out)["agreement"] >= 0.95
    # weight scales and zero points are quantization parameters, not model parameters
    assert out.param_count() == digits_onnx.param_count()


def test_int4_rewrites_gemm_and_packs_weights(digits_model, digits_onnx, tmp_path):
    out = apply_pass(digits_onnx, wb.Int4WeightOnly(block_size=32), PassJob(model=digits_model, workdir=tmp_path))
    ops = [n.op_type for n in onnx.load(str(out.path)).graph.node]
    assert "Gemm" not in ops and ops.count("MatMulNBits") == 2  # both Linear layers now 4-bit
    assert out.meta["gemm_rewritten"] == 2
    assert _score(digits_model, out)["agreement"] >= 0.95
    # params are counted as weights, not packed bytes
    assert out.param_count() == digits_onnx.param_count(), "block scales and zero points are not parameters"


def test_export_parity_failure_carries_numbers(digits_model, tmp_path):
    with pytest.raises(wb.ParityError) as e:
        apply_pass(digits_model.baseline, wb.OnnxExport(atol=1e-12), PassJob(model=digits_model, workdir=tmp_path))
    # 1e-12 is below float32 noise: the error reports the measured difference and the tolerance
    assert e.value.atol == 1e-12 and e.value.max_abs_diff > 1e-12
    assert "max abs diff" in str(e.value) and "atol 1e-12" in str(e.value)


def test_runner_takes_onnxruntime_session_config(digits_model, digits_onnx, tmp_path):
    """Session config entries reach ONNX Runtime and, for thread spinning, change nothing in the outputs."""
    import numpy as np

    inputs = digits_model.bench_inputs()
    plain = digits_onnx.runner(2)(inputs)
    nospin = digits_onnx.runner(2, session_config={"session.intra_op.allow_spinning": "0"})
    np.testing.assert_array_equal(nospin(inputs), plain)
    # proof that entries arrive: told the file is in ORT's own format, ONNX Runtime refuses the .onnx file
    with pytest.raises(wb.ModelLoadError, match="cannot load"):
        digits_onnx.runner(1, session_config={"session.load_model_format": "ORT"})


def test_session_hints_follow_the_file_when_it_is_rewritten(digits_onnx, tmp_path):
    """Hints are read once per file version: rewriting the model in place is seen at the next session."""
    import shutil

    from workbench.core.artifact import session_hints, set_session_hints

    path = tmp_path / "model.onnx"
    shutil.copy(digits_onnx.path, path)
    assert session_hints(path) == {"disabled_optimizers": []}
    m = onnx.load(str(path))
    set_session_hints(m, disabled_optimizers=("SkipLayerNormFusion",))
    onnx.save(m, str(path))
    assert session_hints(path) == {"disabled_optimizers": ["SkipLayerNormFusion"]}
    assert session_hints(tmp_path / "missing.onnx") == {"disabled_optimizers": []}
