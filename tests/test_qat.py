"""Quantization-aware training: an INT8 ONNX model that recovers what post-training quantization loses."""

from __future__ import annotations

from collections import Counter

import pytest

import workbench as wb
from workbench.measure.evaluate import predict
from workbench.passes import PassJob, apply_pass


@pytest.mark.parametrize(
    ("field", "value"),
    [("weight_bits", 1), ("weight_bits", 9), ("steps", -5), ("calibration_batches", 0), ("skip", ("",))],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(wb.ConfigError, match=f"'{field}' parameter of QuantAwareTraining must be"):
        wb.QuantAwareTraining(**{field: value})


def test_qat_recovers_accuracy_lost_by_ptq_at_2_bit_weights(digits_model):
    """digits-cnn with 2-bit per-tensor weights (int8 storage), uint8 activations: PTQ vs QAT on the same grid.

    One scale per tensor on a 4-level grid wrecks post-training quantization; fine-tuning with the
    quantizer in the loop wins most of it back. (Per-channel 2-bit PTQ keeps 0.72-0.95 depending on the
    trained weights, too close to call in a test.)
    """
    import onnx

    cfg = {"weight_bits": 2, "per_channel": False}
    ptq = apply_pass(digits_model.baseline, wb.QuantAwareTraining(**cfg, steps=0), PassJob(model=digits_model))
    qat = apply_pass(digits_model.baseline, wb.QuantAwareTraining(**cfg, steps=300), PassJob(model=digits_model))
    facts = qat.meta["qat"]
    base_acc = predict(digits_model.baseline.runner(), digits_model.data.eval).argmax(-1)
    base_acc = float((base_acc == digits_model.data.eval.labels).mean())
    # both numbers are recorded; PTQ at 2 bits loses a lot (how much depends on the trained weights, which
    # differ between CPUs: 0.105 and 0.675 seen), QAT wins most of the loss back (to 0.83 and 0.975)
    ptq_acc, qat_acc = facts["ptq"]["accuracy"], facts["qat"]["accuracy"]
    print(f"fp32 {base_acc:.3f}  ptq {ptq_acc:.3f}  qat {qat_acc:.3f}")
    assert ptq_acc == ptq.meta["qat"]["ptq"]["accuracy"] <= base_acc - 0.15
    assert qat_acc >= base_acc - 0.2
    assert facts["accuracy_recovered"] == pytest.approx(qat_acc - ptq_acc)
    assert facts["accuracy_recovered"] >= 0.6 * (base_acc - ptq_acc)
    # the exported model is real INT8: int8 weight initializers, QDQ nodes, ~4x smaller
    model = onnx.load(str(qat.path))
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] >= 4 and ops["DequantizeLinear"] >= 8
    int8 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len(int8) == facts["weights_folded_to_int8"] == 4
    assert qat.size_bytes() < 0.35 * digits_model.baseline.param_count() * 4
    # ONNX Runtime scores what the fake-quantized PyTorch model scored
    out = predict(qat.runner(), digits_model.data.eval)
    ort_acc = float((out.argmax(-1) == digits_model.data.eval.labels).mean())
    assert abs(ort_acc - facts["qat"]["accuracy"]) <= 0.01


def test_qat_int8_through_optimize_keeps_accuracy(digits_model, store, fast_bench):
    base, cand = wb.optimize(
        digits_model, [wb.Recipe("qat8", (wb.QuantAwareTraining(steps=30),))], store=store, bench=fast_bench
    )
    assert cand.status == "ok", cand.error
    assert cand.runtime == "onnxruntime" and cand.parent_id == base.id
    assert cand.metrics["accuracy_drop"] <= 0.02 and cand.metrics["size_bytes"] < 0.35 * base.metrics["size_bytes"]
    assert cand.notes["qat"]["weight_bits"] == 8 and "ptq" in cand.notes["qat"]
