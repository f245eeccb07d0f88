"""Configs validate themselves with errors that name the parameter, the value and the valid range."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from workbench.tasks.budget import Budget


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: wb.DynamicInt8(weight_type="int3"), r"'weight_type' parameter of DynamicInt8 must be one of"),
        (lambda: wb.StaticInt8(samples=0), r"'samples' parameter of StaticInt8 must be an int in \[1, 100000\]. Got 0"),
        (lambda: wb.StaticInt8(calibration="median"), r"'calibration'.*'minmax', 'entropy', 'percentile'.*'median'"),
        (lambda: wb.StaticInt8(calibration="percentile", percentile=50.0), r"'percentile'.*\[90, 100\]"),
        (lambda: wb.StaticInt8(calibration="minmax", percentile=99.9), r"only applies with calibration='percentile'"),
        (lambda: wb.StaticInt8(exclude="some"), r"'exclude'.*'auto', 'none'"),
        (lambda: wb.Int4WeightOnly(block_size=48), r"'block_size'.*16, 32, 64, 128, 256.*48"),
        (lambda: wb.OnnxExport(opset=7), r"'opset'.*\[13, 23\]"),
        (lambda: wb.OnnxExport(atol=float("nan")), r"'atol'"),
        (lambda: wb.Cast(dtype="int8"), r"'dtype'.*'bf16', 'fp16'"),
        (lambda: wb.OrtOptimize(level="max"), r"'level'.*'basic', 'extended', 'all'"),
        (lambda: wb.BenchConfig(runs=0), r"'runs'"),
        (lambda: wb.BenchConfig(threads=0), r"'threads'"),
        (lambda: Budget(max_latency_ms=-1), r"'max_latency_ms'.*Got -1"),
        (lambda: Budget(max_accuracy_drop=2), r"'max_accuracy_drop'.*\[0, 1\]"),
        (lambda: Budget(max_size_mb="ten"), r"'max_size_mb'.*'ten'"),
    ],
    ids=[
        "weight_type",
        "samples",
        "calibration",
        "percentile-range",
        "percentile-contradiction",
        "exclude",
        "block_size",
        "opset",
        "atol-nan",
        "dtype",
        "level",
        "runs",
        "threads",
        "budget-neg",
        "budget-drop",
        "budget-str",
    ],
)
def test_bad_config_names_parameter_and_range(make, match):
    with pytest.raises(wb.ConfigError, match=match):
        make()


def test_unknown_pass_kind_lists_known():
    with pytest.raises(wb.UnknownNameError) as e:
        wb.PassConfig.from_dict({"kind": "quantum-int2"})
    assert "dynamic-int8" in str(e.value) and "static-int8" in str(e.value)


def test_version_mismatch_is_refused():
    d = wb.DynamicInt8().to_dict()
    d["version"] = 99
    with pytest.raises(wb.ConfigError, match="version 99"):
        wb.PassConfig.from_dict(d)


def test_tuple_fields_round_trip():
    cfg = wb.StaticInt8(exclude=("a", "b"), op_types=("MatMul",))
    again = wb.PassConfig.from_json(json.dumps(cfg.to_dict()))
    assert again == cfg and isinstance(again.exclude, tuple)


def test_recipe_file_errors_name_step_and_field(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"name": "x", "steps": [{"kind": "onnx-export"}, {"kind": "static-int8", "samples": -3}]}))
    with pytest.raises(wb.RecipeError, match=r"r.json, step 2 \('static-int8'\).*'samples'.*Got -3"):
        wb.load_recipe(p)
    p.write_text(
        json.dumps({"name": "x", "steps": [{"kind": "onnx-export"}, {"kind": "dynamic-int8", "per_chanel": True}]})
    )
    with pytest.raises(wb.RecipeError, match=r"step 2 \('dynamic-int8'\).*no field 'per_chanel'"):
        wb.load_recipe(p)
    p.write_text("{not json")
    with pytest.raises(wb.RecipeError, match="not valid JSON"):
        wb.load_recipe(p)
    p.write_text(json.dumps({"name": "x", "steps": []}))
    with pytest.raises(wb.RecipeError, match="non-empty list"):
        wb.load_recipe(p)


def test_recipe_chain_is_checked():
    r = wb.Recipe("bad", (wb.DynamicInt8(),))
    with pytest.raises(wb.RecipeError, match=r"step 1 \('dynamic-int8'\) needs an ONNX model.*add an 'onnx-export'"):
        r.validate_for("torch")
    r = wb.Recipe("bad2", (wb.OnnxExport(), wb.Cast("bf16")))
    with pytest.raises(wb.RecipeError, match=r"step 2 \('cast'\).*move it before the 'onnx-export'"):
        r.validate_for("torch")


def test_unknown_recipe_lists_known():
    with pytest.raises(wb.UnknownNameError) as e:
        wb.get_recipe("ort-int9")
    assert "ort-int8-dynamic" in str(e.value)


@pytest.mark.parametrize(
    "cls, field, value, words",
    [
        ("StaticInt8", "op_types", "MatMul", "write ('MatMul',)"),
        ("StaticInt8", "per_channel", "no", "a bool"),
        ("StaticInt8", "exclude", 42, "a str or a tuple of str"),
        ("DynamicInt8", "per_channel", 1, "a bool"),
        ("StructuredPrune", "finetune_steps", 2.5, "an int"),
        ("StructuredPrune", "targets", "heads", "a tuple of str"),
    ],
)
def test_every_config_field_is_type_checked(cls, field, value, words):
    """A wrong type is refused with the field, the value and the type (never iterated or truth-tested)."""
    import workbench as wb

    with pytest.raises(wb.ConfigError) as e:
        getattr(wb, cls)(**{field: value})
    msg = str(e.value)
    assert repr(field) in msg and repr(value) in msg and words in msg, msg


def test_a_list_for_a_tuple_field_is_taken_as_a_tuple():
    import workbench as wb

    cfg = wb.StaticInt8(op_types=["MatMul", "Conv"])
    assert cfg.op_types == ("MatMul", "Conv") and hash(cfg)
