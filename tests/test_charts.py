"""Chart specs and tables: asserted through ``to_dict()`` and through the SVG vl-convert renders offline."""

from __future__ import annotations

import re

import pytest

from workbench import Candidate
from workbench.report.charts import candidates_frame, compare_frame, size_chart, to_svg, tradeoff_chart
from workbench.tasks.budget import Budget, pareto_front


def cand(
    cid: str,
    recipe: str,
    p50: float,
    acc: float | None,
    size_mb: float,
    *,
    status: str = "ok",
    steps: int = 1,
    fidelity: float | None = None,
    **extra,
) -> Candidate:
    metrics = {"p50_ms": p50, "p90_ms": p50 * 1.2, "size_bytes": int(size_mb * 1e6), **extra}
    if acc is not None:
        metrics["accuracy"] = acc
    if fidelity is not None:
        metrics["fidelity"] = fidelity
    return Candidate(
        id=cid,
        key=f"k-{cid}",
        model="m",
        recipe_name=recipe,
        recipe={"name": recipe, "steps": [{"kind": "onnx-export"}] * steps},
        runtime="onnxruntime",
        status=status,
        metrics=metrics,
    )


@pytest.fixture
def cands() -> list[Candidate]:
    return [
        cand("base", "baseline", 10.0, 0.97, 90.0, steps=0),
        cand("dyn", "int8-dynamic", 5.0, 0.965, 23.0),  # on the front: faster, a little worse
        cand("slow", "fp16", 30.0, 0.96, 45.0),  # dominated by the baseline on both axes
        cand("tiny", "int4", 4.0, 0.90, 12.0),  # on the front: fastest
        cand("bad", "int8-static", 0, None, 0, status="failed"),  # not drawn
    ]


def layer(spec: dict, description: str) -> list[dict]:
    return [lay for lay in spec["layer"] if lay.get("description") == description]


def test_tradeoff_points_front_and_selection(cands):
    spec = tradeoff_chart(cands, selected=["dyn"]).to_dict()
    (points,) = layer(spec, "candidates")
    rows = {r["id"]: r for r in points["data"]["values"]}
    assert set(rows) == {"base", "dyn", "slow", "tiny"}  # the failed one has no metrics to draw
    assert rows["dyn"]["role"] == "selected" and rows["base"]["role"] == "baseline"
    assert rows["dyn"]["x"] == 5.0 and rows["dyn"]["y"] == 0.965
    assert points["encoding"]["y"]["title"] == "accuracy"
    (front,) = layer(spec, "pareto-front")
    assert [r["id"] for r in front["data"]["values"]] == ["tiny", "dyn", "base"]  # sorted by latency
    assert front["mark"]["type"] == "line"
    # the pareto flag is the library's definition
    assert {i for i, r in rows.items() if r["pareto"]} == {c.id for c in pareto_front(cands)}
    assert "(4 measured)" in spec["title"]


def test_tradeoff_budget_rules(cands):
    spec = tradeoff_chart(cands, Budget(max_latency_ms=6, max_accuracy_drop=0.01)).to_dict()
    rules = layer(spec, "budget")
    xs = [r["data"]["values"][0] for r in rules if "x" in r["encoding"]]
    ys = [r["data"]["values"][0] for r in rules if "y" in r["encoding"]]
    assert xs[0]["x"] == 6
    assert ys[0]["y"] == pytest.approx(0.96)  # baseline 0.97 - 1 point
    assert tradeoff_chart(cands, None).to_dict()["layer"][-1]["description"] == "candidates"


def test_tradeoff_falls_back_to_fidelity_and_takes_lm_axes():
    cs = [
        cand("a", "baseline", 2.0, None, 1.0, steps=0, fidelity=1.0),
        cand("b", "int8", 1.0, None, 0.5, fidelity=0.99),
    ]
    assert tradeoff_chart(cs).to_dict()["layer"][1]["encoding"]["y"]["title"] == "fidelity to FP32"
    lm = [
        cand("a", "baseline", 50, None, 500, steps=0, perplexity=8.1, tokens_per_s=20.0),
        cand("b", "bf16", 20, None, 250, perplexity=8.07, tokens_per_s=47.0),
        cand("c", "int8", 21, None, 137, perplexity=10.6, tokens_per_s=47.0),
    ]
    spec = tradeoff_chart(lm, x="tokens_per_s", y="perplexity").to_dict()
    (front,) = layer(spec, "pareto-front")
    # more tokens/s and lower perplexity are better: bf16 beats both others
    assert [r["id"] for r in front["data"]["values"]] == ["b"]
    assert spec["layer"][1]["encoding"]["x"]["title"] == "tokens / s"


def test_tradeoff_svg_shows_the_points(cands):
    svg = to_svg(tradeoff_chart(cands, Budget(max_latency_ms=6), selected=["dyn"]))
    labels = re.findall(r'aria-label="([^"]*recipe: [^"]*)"', svg)
    assert len(labels) == 4
    assert any("recipe: int8-dynamic" in s and "role: selected" in s for s in labels)
    assert "Title text 'm: accuracy vs p50 latency (ms) (4 measured)'" in svg


def test_size_chart_bars_and_budget(cands):
    chart = size_chart(cands, Budget(max_size_mb=25), selected=["tiny"])
    spec = chart.to_dict()
    bars = spec["layer"][0]["data"]["values"]
    assert [round(b["value"], 3) for b in bars] == [90.0, 23.0, 45.0, 12.0]
    assert spec["layer"][1]["mark"]["type"] == "rule" and spec["layer"][1]["data"]["values"][0]["value"] == 25
    assert len(re.findall(r'aria-label="[^"]*recipe: ', to_svg(chart))) == 4


def test_empty_charts_render():
    assert "0 measured" in tradeoff_chart([]).to_dict()["title"]
    assert "<svg" in to_svg(tradeoff_chart([], Budget(max_latency_ms=1)))
    spec = size_chart([]).to_dict()
    # a lone layer's data is lifted to the top of the spec: the layer keeps none of its own
    assert spec["data"]["values"] == [] and "data" not in spec["layer"][0]


def test_frames(cands):
    df = candidates_frame(cands)
    assert list(df["id"]) == ["base", "dyn", "slow", "tiny", "bad"]
    assert df.loc[df["id"] == "dyn", "size_mb"].item() == pytest.approx(23.0)
    assert df.loc[df["id"] == "bad", "status"].item() == "failed"
    cmp = compare_frame(cands[0], cands[1])
    assert list(cmp.columns) == ["base", "dyn", "b - a"]
    assert cmp.loc["p50_ms", "b - a"] == pytest.approx(-5.0)
    assert cmp.loc["recipe", "dyn"] == "int8-dynamic"
    assert "onnx-export" in cmp.loc["steps", "dyn"] and cmp.loc["steps", "base"] == "(fp32 baseline)"
