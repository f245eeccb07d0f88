"""Per-layer sensitivity (real ORT quantizers / real pruning on one layer at a time) and mixed precision."""

from __future__ import annotations

import pytest

from workbench import BenchConfig, ConfigError, PassError
from workbench.measure.sensitivity import SelectiveQuant, _block_of, mixed_precision, sensitivity


@pytest.fixture(scope="module")
def sens(digits_model):
    return sensitivity(digits_model, ["int8", "prune"], sparsity=0.9)


def test_sensitivity_table_per_layer(sens):
    df = sens.frame
    int8 = df[df.technique == "int8"]
    prune = df[df.technique == "prune"]
    # 4 weight layers (2 Conv, 2 Gemm) plus the all-layers row, per technique
    assert len(int8) == 5 and len(prune) == 5
    assert set(int8.op_types) == {"Conv", "Gemm", "Conv,Gemm"}  # the (all) row has both
    assert (int8.fidelity > 0.97).all()  # per-channel INT8 barely changes a small CNN
    one = prune[prune.layer != "(all)"]
    everything = prune[prune.layer == "(all)"].iloc[0]
    # removing 90 % of every layer's weights hurts more than doing it to any single layer
    assert everything.accuracy_drop > one.accuracy_drop.max() > 0
    assert sens.baseline["accuracy"] > 0.95
    ranked = sens.ranking("prune")
    assert ranked[0]["accuracy_drop"] == one.accuracy_drop.max()


def test_sensitivity_heatmap(sens):
    spec = sens.chart().to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rect", "text"]
    # both layers draw the same rows: the data sits once, at the top of the spec
    assert not any("data" in layer for layer in spec["layer"])
    values = spec["data"]["values"]
    assert len(values) == len(sens.rows)
    drops = {(v["technique"], v["layer"]): v["value"] for v in values}
    assert drops[("prune", "(all)")] == pytest.approx(
        sens.frame.query("technique == 'prune' and layer == '(all)'").accuracy_drop.iloc[0]
    )


def test_block_grouping_of_transformer_node_names():
    assert _block_of("/encoder/encoder/layer.3/attention/self/query/MatMul") == "encoder/encoder/layer.3"
    assert _block_of("/model/layers.11/mlp/down_proj/MatMul") == "model/layers.11"
    assert _block_of("/classifier/classifier.1/Gemm") == "classifier"


def test_mixed_precision_keeps_the_most_sensitive_layers(digits_model, sens, store):
    res = mixed_precision(
        digits_model,
        max_drop=0.02,
        technique="prune",
        sparsity=0.9,
        sens=sens,
        store=store,
        bench=BenchConfig(warmup=2, runs=5, threads=1),
    )
    assert res.history[0][1] > 0.02  # pruning everything breaks the bound ...
    assert res.kept and res.kept[0] == sens.ranking("prune")[0]["layer"]  # ... so the most sensitive stays dense
    assert res.history[-1][1] <= 0.02 and len(res.history) == len(res.kept) + 1
    c = res.candidate
    assert c.ok and c.get("accuracy_drop") <= 0.02
    assert store.get(c.id).recipe["steps"][-1]["keep"] == res.kept
    assert c.notes["kept_float"] == res.kept


def test_selective_pass_validation(digits_model, tmp_path):
    with pytest.raises(ConfigError, match="'technique' parameter of SelectiveQuant must be one of"):
        SelectiveQuant("int3")
    with pytest.raises(ConfigError, match="both in 'only' and in 'keep'"):
        SelectiveQuant("int8", only=("a",), keep=("a",))
    from workbench.passes import OnnxExport, PassJob, apply_pass

    art = apply_pass(digits_model.baseline, OnnxExport(), PassJob(model=digits_model, workdir=tmp_path / "e"))
    with pytest.raises(PassError, match="no node named 'nope'"):
        apply_pass(art, SelectiveQuant("int8", only=("nope",)), PassJob(model=digits_model, workdir=tmp_path / "q"))


def test_cli_sensitivity_json_and_heatmap(tmp_path, capsys):
    import json

    from workbench.cli.main import main

    svg = tmp_path / "charts" / "heat.svg"
    rc = main(["sensitivity", "digits-cnn", "--technique", "prune", "--n-eval", "200", "--json", "--chart", str(svg)])
    out = capsys.readouterr().out
    data = json.loads(out[: out.rindex("}") + 1])
    assert rc == 0 and data["by"] == "layer" and len(data["rows"]) == 5
    assert svg.read_text().lstrip().startswith("<svg")
