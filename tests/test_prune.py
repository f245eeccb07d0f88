"""Magnitude and structured pruning on real models: sparsity reached, structure removed, accuracy kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import workbench as wb
from workbench.data.splits import Split, TaskData
from workbench.measure.evaluate import cosine_rows, predict
from workbench.passes import PassJob, apply_pass


def _score(model, art) -> dict:
    out = predict(art.runner(), model.data.eval)
    return model.task.metrics(out, model.data.eval.labels, model.reference_outputs())


@pytest.mark.parametrize("cls", [wb.MagnitudePrune, wb.StructuredPrune], ids=["magnitude", "structured"])
@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, 0.96], ids=["one", "above-one", "negative", "above-0.95"])
def test_sparsity_out_of_range_is_refused(cls, bad):
    with pytest.raises(wb.ConfigError, match=r"'sparsity' parameter of \w+ must be a float in \[0, 0.95\]"):
        cls(sparsity=bad)


def test_bad_fields_name_the_field():
    with pytest.raises(wb.ConfigError, match="finetune_steps"):
        wb.MagnitudePrune(schedule="gradual", finetune_steps=0)
    with pytest.raises(wb.ConfigError, match="'scope'.*'global', 'layer'"):
        wb.MagnitudePrune(scope="row")
    with pytest.raises(wb.ConfigError, match="'targets'"):
        wb.StructuredPrune(targets=("channels",))
    with pytest.raises(wb.RecipeError, match=r"step 1 \('structured-prune'\).*sparsity"):
        wb.Recipe.from_dict({"name": "x", "steps": [{"kind": "structured-prune", "sparsity": 1.2}]})


def test_magnitude_prune_reaches_sparsity_and_says_latency_is_unchanged(digits_model):
    base = digits_model.baseline
    before = {k: v.clone() for k, v in base.module.state_dict().items()}
    cfg = wb.MagnitudePrune(sparsity=0.8, scope="global", schedule="gradual", finetune_steps=40, batch_size=32)
    out = apply_pass(base, cfg, PassJob(model=digits_model))
    assert all((v == base.module.state_dict()[k]).all() for k, v in before.items()), "input was mutated"
    facts = out.meta["pruning"]
    assert abs(facts["sparsity_reached"] - 0.8) < 0.005
    assert facts["nonzero_params_after"] < 0.3 * facts["nonzero_params_before"]
    assert facts["zipped_bytes_after"] < 0.6 * facts["zipped_bytes_before"]
    assert out.meta["latency_changed"] is False and "dense" in facts["latency_note"]
    assert facts["finetune"]["steps_done"] == 40
    m = _score(digits_model, out)
    assert m["accuracy"] >= 0.93, m
    # the zeros survive export: the ONNX model is as sparse and as accurate
    onx = apply_pass(out, wb.OnnxExport(), PassJob(model=digits_model))
    assert abs(_score(digits_model, onx)["accuracy"] - m["accuracy"]) <= 0.005


def test_layer_scope_prunes_every_layer_equally(digits_model):
    out = apply_pass(digits_model.baseline, wb.MagnitudePrune(sparsity=0.5, scope="layer"), PassJob(model=digits_model))
    for name, mod in out.module.named_modules():
        if hasattr(mod, "weight") and mod.weight is not None and mod.weight.dim() > 1:
            assert abs(float((mod.weight == 0).float().mean()) - 0.5) < 0.02, name


def test_structured_prune_cnn_is_smaller_faster_shape_and_accurate(digits_model):
    cfg = wb.StructuredPrune(sparsity=0.5, finetune_steps=60, batch_size=32, importance_batches=2)
    out = apply_pass(digits_model.baseline, cfg, PassJob(model=digits_model))
    feats = out.module.features
    assert feats[0].out_channels == 16 and feats[2].in_channels == 16 and feats[2].out_channels == 32
    assert out.module.classifier[1].in_features == 32 * 16 and out.module.classifier[1].out_features == 64
    assert digits_model.baseline.module.features[0].out_channels == 32, "input was mutated"
    facts = out.meta["structured_pruning"]
    assert facts["params_after"] == out.param_count() < 0.3 * facts["params_before"]
    base_acc = _score(digits_model, digits_model.baseline)["accuracy"]
    assert _score(digits_model, out)["accuracy"] >= base_acc - 0.03
    onx = apply_pass(out, wb.OnnxExport(), PassJob(model=digits_model))
    assert onx.param_count() < 0.3 * digits_model.baseline.param_count()


def test_structured_prune_refuses_a_model_without_prunable_structure():
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    data = TaskData(Split({"x": x}, y), Split({"x": x[:20]}, y[:20]), None)
    model = wb.from_module(torch.nn.Sequential(torch.nn.Linear(6, 2)), data, name="one-layer")
    with pytest.raises(wb.ConfigError, match="no prunable structure in 'one-layer'"):
        apply_pass(model.baseline, wb.StructuredPrune(finetune_steps=0), PassJob(model=model))


def test_structured_prune_minilm_removes_heads_and_ffn_and_fuses(minilm_model, tmp_path):
    cfg = wb.StructuredPrune(sparsity=0.5, finetune_steps=2, batch_size=4, importance_batches=1)
    events: list[wb.ProgressEvent] = []
    out = apply_pass(minilm_model.baseline, cfg, PassJob(model=minilm_model, ctx=wb.RunContext(events.append)))
    facts = out.meta["structured_pruning"]
    assert (facts["heads_before"], facts["heads_after"]) == (72, 36)
    assert (facts["ffn_before"], facts["ffn_after"]) == (9216, 4608)
    assert out.meta["num_heads"] == 6
    layer = out.module.encoder.encoder.layer[0]
    assert layer.attention.self.query.out_features == 192 and layer.intermediate.dense.out_features == 768
    assert minilm_model.baseline.module.encoder.encoder.layer[0].intermediate.dense.out_features == 1536
    assert facts["params_after"] < facts["params_before"] - 5_000_000
    assert any(e.message.startswith("step 2 loss") for e in events)
    # the pruned model exports and ONNX Runtime still fuses its attention (6 heads of 32)
    onx = apply_pass(out, wb.OnnxExport(), PassJob(model=minilm_model, workdir=tmp_path / "e"))
    fused = apply_pass(onx, wb.OrtOptimize(), PassJob(model=minilm_model, workdir=tmp_path / "f"))
    assert fused.meta["fused_ops"].get("Attention") == 6
    torch_out = predict(out.runner(), minilm_model.data.eval.take(slice(0, 8)))
    ort_out = predict(fused.runner(), minilm_model.data.eval.take(slice(0, 8)))
    assert cosine_rows(torch_out, ort_out).min() > 0.999


@dataclass(frozen=True)
class _TorchInt8(wb.PassConfig):
    """A stand-in for any PyTorch-side quantizer: only its declared kinds matter to recipe validation."""

    kind: ClassVar[str] = "test-torch-int8"
    quantizes: ClassVar[bool] = True


@pytest.mark.parametrize(
    "step",
    [wb.MagnitudePrune(), wb.StructuredPrune(), wb.Distill(), wb.QuantAwareTraining()],
    ids=["magnitude", "structured", "distill", "qat"],
)
def test_recipe_refuses_training_after_quantization(step):
    recipe = wb.Recipe("bad", (_TorchInt8(), step))
    with pytest.raises(wb.RecipeError, match=rf"step 2 \('{step.kind}'\) cannot follow step 1 .*float weights"):
        recipe.validate_for("torch")


def test_recipe_file_with_pruning_after_int8_names_the_step(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        '{"name": "bad", "steps": [{"kind": "onnx-export"}, {"kind": "dynamic-int8"}, '
        '{"kind": "structured-prune", "sparsity": 0.3}]}'
    )
    recipe = wb.load_recipe(path)
    with pytest.raises(wb.RecipeError, match=r"step 3 \('structured-prune'\) needs a torch model"):
        recipe.validate_for("torch")


def test_prune_recipe_records_lineage(digits_model, store, fast_bench):
    recipe = wb.Recipe(
        "prune-then-int8",
        (
            wb.StructuredPrune(sparsity=0.5, finetune_steps=30, batch_size=32, importance_batches=2),
            wb.OnnxExport(),
            wb.DynamicInt8(),
        ),
    )
    base, cand = wb.optimize(digits_model, [recipe], store=store, bench=fast_bench)
    assert cand.status == "ok", cand.error
    chain = store.lineage(cand.id)
    assert [c.recipe["steps"][-1]["kind"] if c.recipe["steps"] else "baseline" for c in chain] == [
        "baseline",
        "structured-prune",
        "onnx-export",
        "dynamic-int8",
    ]
    assert chain[1].notes["structured_pruning"]["params_after"] < 0.3 * base.metrics["params"]
    assert cand.metrics["size_bytes"] < 0.15 * base.metrics["size_bytes"]
    assert cand.metrics["accuracy_drop"] <= 0.03


def test_compression_recipes_load_from_json_and_validate(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        '{"name": "mine", "steps": [{"kind": "structured-prune", "sparsity": 0.25, "targets": ["ffn"]}, '
        '{"kind": "distill", "student_layers": 2}, {"kind": "onnx-export"}, {"kind": "dynamic-int8"}]}'
    )
    recipe = wb.get_recipe(str(path))
    recipe.validate_for("torch")
    assert recipe.steps[:2] == (wb.StructuredPrune(sparsity=0.25, targets=("ffn",)), wb.Distill(student_layers=2))
    for name in ("prune-structured-int8", "distill-int8", "prune-distill-int8", "qat-int8"):
        wb.get_recipe(name).validate_for("torch")
