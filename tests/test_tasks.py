"""The task seam: one table of task kinds, each owning its metrics' directions, comparisons and columns."""

from __future__ import annotations

import json
import sqlite3

import pytest

import workbench as wb
from workbench.store.candidate import Candidate
from workbench.tasks import TASKS, dominates, get_task, pareto_front, quality, task_of
from workbench.tasks.budget import Budget, best_within


def cand(cid: str, task: str, steps: int = 1, **metrics) -> Candidate:
    return Candidate(
        id=cid,
        key=cid,
        model="m",
        recipe_name="baseline" if not steps else cid,
        recipe={"steps": [{"kind": "x"}] * steps},
        runtime="onnxruntime",
        status="ok",
        metrics={"size_bytes": 1_000_000, **metrics},
        task=task,
    )


def test_every_registered_task_loads_and_declares_its_axes():
    for name in TASKS:
        cls = get_task(name)
        assert cls.name == name
        assert cls.quality_metrics and cls.speed_metric in ("p50_ms", "tokens_per_s")
    with pytest.raises(wb.UnknownNameError, match="causal-lm"):
        get_task("regression")


def test_quality_and_front_follow_each_tasks_directions():
    # classification: accuracy up, latency down
    a = cand("a", "classification", accuracy=0.95, p50_ms=2.0)
    b = cand("b", "classification", accuracy=0.90, p50_ms=3.0)  # worse on both: dominated
    c = cand("c", "classification", accuracy=0.85, p50_ms=1.0)
    assert quality(a) == 0.95 and dominates(a, b, ("accuracy", "p50_ms"))
    assert {x.id for x in pareto_front([a, b, c])} == {"a", "c"}
    # causal LM: lower perplexity and more tokens/s are better
    x = cand("x", "causal-lm", perplexity=30.0, tokens_per_s=20.0)
    y = cand("y", "causal-lm", perplexity=35.0, tokens_per_s=60.0)
    z = cand("z", "causal-lm", perplexity=40.0, tokens_per_s=50.0)  # worse than y on both
    assert quality(x) == -30.0 and quality(x) > quality(y)
    assert {c.id for c in pareto_front([x, y, z])} == {"x", "y"}
    assert best_within([x, y, z], Budget(min_tokens_per_s=30)).id == "y"


def test_task_of_reads_the_record_and_infers_old_records():
    assert task_of(cand("a", "embedding-classification", accuracy=0.9)).name == "embedding-classification"
    old = cand("o", "", perplexity=10.0, tokens_per_s=5.0)
    assert task_of(old).name == "causal-lm"
    assert task_of(cand("g", "", cosine=0.99, fidelity=0.99)).name == "generic"


def test_degradation_and_relative_belong_to_the_task():
    cls = get_task("classification")
    assert cls.degradation({"accuracy": 0.80}, {"accuracy": 0.90}) == "accuracy dropped 10.0 points (limit 5)"
    assert cls.degradation({"accuracy": 0.88}, {"accuracy": 0.90}) is None
    lm = get_task("causal-lm")
    assert "perplexity rose from 10.00 to 20.00" in lm.degradation({"perplexity": 20.0}, {"perplexity": 10.0})
    rel = lm.relative(
        {"perplexity": 11.0, "p50_ms": 5.0, "size_bytes": 50}, {"perplexity": 10.0, "p50_ms": 10.0, "size_bytes": 100}
    )
    assert rel["perplexity_increase"] == pytest.approx(0.1) and rel["speedup"] == 2.0 and rel["size_ratio"] == 0.5


def test_candidates_record_their_task(digits_model, store, fast_bench):
    base, c = wb.optimize(digits_model, ["ort-fp32"], store=store, bench=fast_bench)
    assert base.task == c.task == "classification"
    assert {x.task for x in store.candidates()} == {"classification"}


def test_a_store_written_before_tasks_were_recorded_opens_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """CREATE TABLE candidates (id TEXT PRIMARY KEY, key TEXT NOT NULL, model TEXT NOT NULL,
        recipe_name TEXT NOT NULL, recipe TEXT NOT NULL, runtime TEXT NOT NULL, status TEXT NOT NULL,
        metrics TEXT NOT NULL, env TEXT NOT NULL, artifact_path TEXT, artifact_sha256 TEXT, parent_id TEXT,
        error TEXT, threads INTEGER, seed INTEGER, created_at REAL NOT NULL, notes TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"""
    )
    con.execute(
        "INSERT INTO candidates VALUES ('old1','k','m','baseline','{}','torch','ok',?,'{}',NULL,NULL,NULL,NULL,1,0,1.0,'{}')",
        (json.dumps({"accuracy": 0.9, "p50_ms": 1.0}),),
    )
    con.commit()
    con.close()
    store = wb.RunStore(path)
    (old,) = store.candidates()
    assert old.id == "old1" and old.task == "" and task_of(old).name == "classification"
    store.add(cand("new1", "classification", accuracy=0.8, p50_ms=0.5))
    assert [c.task for c in store.candidates()] == ["", "classification"]


def test_linear_head_with_two_classes_predicts_both():
    """scikit-learn gives one weight row for two classes: the head spreads it to one logit per class."""
    import numpy as np

    from workbench.tasks import LinearHead

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (40, 5)), rng.normal(2, 1, (40, 5))]).astype(np.float32)
    y = np.repeat([0, 1], 40)
    head = LinearHead.fit(x, y)
    assert head.weight.shape == (2, 5) and head.bias.shape == (2,)
    assert (head(x).argmax(-1) == y).mean() >= 0.95
