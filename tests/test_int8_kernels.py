"""ONNX Runtime's u8 x s8 integer kernels on this CPU, and the INT8 weight range the workbench picks for it.

On x86 without VNNI, ORT multiplies uint8 activations by int8 weights with VPMADDUBSW, which adds two
adjacent products into an int16 with saturation; ``workbench.core.env.u8s8_saturates`` predicts it from the
CPU flags, and ``reduce_range="auto"`` (DynamicInt8, StaticInt8, QuantAwareTraining) then uses 7-bit
weights, which cannot overflow. Each test here asserts what is true on both kinds of CPU: it checks the
prediction against what ORT actually computes, so it needs neither machine to pass on the other.
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.core.env import resolve_reduce_range, u8s8_saturates
from workbench.passes import PassJob, apply_pass


def _session(model):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _matmul_integer(w: np.ndarray):
    from onnx import TensorProto, helper, numpy_helper

    k, n = w.shape
    g = helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "w"], ["y"])],
        "mmi",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, n])],
        [numpy_helper.from_array(w.astype(np.int8), "w")],
    )
    return _session(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize(
    ("flags", "machine", "saturates"),
    [
        (("avx2", "fma"), "x86_64", True),  # AVX2 only: VPMADDUBSW
        (("avx2", "avx512f", "avx512bw"), "x86_64", True),  # AVX-512 without VNNI: still VPMADDUBSW
        (("avx2", "avx512f", "avx512_vnni"), "x86_64", False),
        (("avx2", "avx_vnni"), "x86_64", False),  # AVX-VNNI (client CPUs)
        (("asimd", "i8mm"), "aarch64", False),  # ARM dot products accumulate in int32
        ((), "aarch64", False),
    ],
    ids=["avx2", "avx512bw", "avx512-vnni", "avx-vnni", "arm-i8mm", "arm"],
)
def test_saturation_is_predicted_from_the_cpu_flags(flags, machine, saturates):
    assert u8s8_saturates(flags, machine) is saturates
    assert resolve_reduce_range("auto", flags, machine) is saturates
    assert resolve_reduce_range(True, flags, machine) is True and resolve_reduce_range(False, flags, machine) is False


def test_full_range_int8_weights_saturate_exactly_where_predicted():
    """u8 255 x s8 127, pairwise: 64770 does not fit in int16; ORT is wrong there iff the fingerprint says so."""
    k, n = 256, 32
    rng = np.random.default_rng(0)
    x = rng.integers(128, 256, (16, k)).astype(np.uint8)
    full = rng.choice([-127, 127], (k, n))
    exact = x.astype(np.int64) @ full
    got = _matmul_integer(full).run(None, {"x": x})[0]
    wrong = float((got != exact).mean())
    if u8s8_saturates():
        assert wrong > 0.5, f"predicted saturation, but ORT computed {1 - wrong:.0%} of outputs exactly"
    else:
        assert wrong == 0.0, f"no saturation predicted, but {wrong:.0%} of outputs are wrong"


def test_seven_bit_weights_are_exact_on_every_cpu():
    k, n = 256, 32
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (16, k)).astype(np.uint8)
    seven = rng.integers(-64, 65, (k, n))  # ORT's reduce_range grid for symmetric int8 weights
    got = _matmul_integer(seven).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, x.astype(np.int64) @ seven)


def _saturating_model():
    """Two Linear layers fed 8x8 digits; the first one's weights all quantize to +-127 in runs of the same
    sign, so its integer kernel sums many pairs of large u8 x s8 products (its output is re-quantized for
    the second layer, which is what makes ONNX Runtime run it on integers). Seeded, untrained weights:
    the same model on every CPU."""
    import torch

    from workbench.data.splits import digits

    torch.manual_seed(0)
    first, second = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
    with torch.no_grad():
        signs = torch.where(torch.arange(64) % 4 < 2, 1.0, -1.0)  # ++--: adjacent pairs share a sign
        first.weight.copy_(0.05 * signs.repeat(32, 1) * torch.linspace(1, 2, 32)[:, None])
        first.bias.fill_(0.5)
    module = torch.nn.Sequential(torch.nn.Flatten(), first, torch.nn.ReLU(), second)
    return wb.from_module(module, digits(seed=0), name="saturating-linear")


def test_qat_export_matches_pytorch_with_auto_range_and_names_saturation_otherwise():
    model = _saturating_model()
    auto = apply_pass(model.baseline, wb.QuantAwareTraining(steps=0), PassJob(model=model))
    facts = auto.meta["qat"]
    assert facts["reduce_range"] is u8s8_saturates()
    assert facts["weight_grid_bits"] == (7 if u8s8_saturates() else 8)
    assert auto.meta["parity_min_cosine"] >= 0.9999
    if u8s8_saturates():
        with pytest.raises(wb.ParityError, match="saturate"):
            apply_pass(model.baseline, wb.QuantAwareTraining(steps=0, reduce_range=False), PassJob(model=model))
    else:
        full = apply_pass(model.baseline, wb.QuantAwareTraining(steps=0, reduce_range=False), PassJob(model=model))
        assert full.meta["parity_min_cosine"] >= 0.9999


def test_qat_on_the_trained_digits_cnn_matches_pytorch(digits_model):
    """Whatever weights this CPU trained, the export computes what the fake-quantized model computes."""
    out = apply_pass(digits_model.baseline, wb.QuantAwareTraining(steps=20), PassJob(model=digits_model))
    assert out.meta["parity_min_cosine"] >= 0.9999
    assert out.meta["qat"]["int8_weights"].startswith("7-bit" if u8s8_saturates() else "full-range")


def test_qat_is_deterministic(digits_model):
    import hashlib

    def run():
        art = apply_pass(digits_model.baseline, wb.QuantAwareTraining(steps=20), PassJob(model=digits_model))
        facts = dict(art.meta["qat"])
        facts["train"] = {k: v for k, v in facts["train"].items() if k != "train_seconds"}  # wall time only
        return hashlib.sha256(art.path.read_bytes()).hexdigest(), art.meta["parity_min_cosine"], facts

    first, second = run(), run()
    assert first == second and first[2]["train"]["final_loss"] > 0


def test_digits_cnn_trains_the_same_weights_in_every_fresh_cache(tmp_path):
    """Its initial weights are seeded too: two empty caches train byte-identical weights (one process each)."""
    import subprocess
    import sys

    code = "import workbench as wb; print(wb.load_model('digits-cnn').baseline.path)"
    files = []
    for i in range(2):
        env = {**__import__("os").environ, "WORKBENCH_CACHE": str(tmp_path / f"c{i}")}
        path = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        files.append(open(path.stdout.strip().splitlines()[-1], "rb").read())
    assert files[0] == files[1]


@pytest.mark.parametrize("cls", [wb.DynamicInt8, wb.StaticInt8, wb.QuantAwareTraining])
@pytest.mark.parametrize("bad", ["yes", 1, None, 7.0])
def test_reduce_range_accepts_only_bools_and_auto(cls, bad):
    with pytest.raises(wb.ConfigError, match="'reduce_range' parameter of .* must be True, False or 'auto'"):
        cls(reduce_range=bad)


def test_int8_artifacts_record_the_weight_range(digits_model):
    out = wb.OnnxExport()
    onnx_art = apply_pass(digits_model.baseline, out, PassJob(model=digits_model))
    for cfg in (wb.DynamicInt8(), wb.StaticInt8(samples=8)):
        art = apply_pass(onnx_art, cfg, PassJob(model=digits_model))
        assert art.meta["reduce_range"] is u8s8_saturates()
        assert "7-bit" in art.meta["int8_weights"] if u8s8_saturates() else "full-range" in art.meta["int8_weights"]
