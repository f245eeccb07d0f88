"""The `workbench` command through a real subprocess, as a user types it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXE = [sys.executable, "-m", "workbench.cli.main"]


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_STORE": str(cwd / "runs.sqlite")}
    r = subprocess.run([*EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_models_and_recipes(tmp_path):
    out = run("models", cwd=tmp_path).stdout
    assert "minilm" in out and "digits-cnn" in out and "embedding-classification" in out
    recipes = json.loads(run("recipes", "--json", cwd=tmp_path).stdout)
    names = {r["name"] for r in recipes}
    assert {"ort-int8-dynamic", "ort-int8-static", "bf16", "int4-weight-only"} <= names
    dyn = next(r for r in recipes if r["name"] == "ort-int8-dynamic")
    assert [s["kind"] for s in dyn["steps"]] == ["onnx-export", "ort-optimize", "dynamic-int8"]


def test_optimize_json_then_runs(tmp_path):
    recipe = tmp_path / "mine.json"
    recipe.write_text(
        json.dumps({"name": "mine", "steps": [{"kind": "onnx-export"}, {"kind": "dynamic-int8", "per_channel": False}]})
    )
    r = run(
        "optimize",
        "digits-cnn",
        "--recipe",
        "ort-int8-static",
        "--recipe",
        str(recipe),
        "--threads",
        "1",
        "--n-eval",
        "100",
        "--json",
        cwd=tmp_path,
    )
    recs = json.loads(r.stdout)
    assert [x["recipe"] for x in recs] == ["baseline", "ort-int8-static", "mine"]
    for x in recs:
        for key in (
            "id",
            "model",
            "recipe",
            "runtime",
            "artifact",
            "p50_ms",
            "p90_ms",
            "size_bytes",
            "accuracy",
            "accuracy_ci",
            "fidelity",
        ):
            assert key in x, key
        assert x["status"] == "ok" and x["threads"] == 1 and x["accuracy"] > 0.9
        # how far each latency can be trusted travels with it: the noise flag, the threads, what it was timed beside
        assert isinstance(x["noisy"], bool) and (x["noise"] is None) == (not x["noisy"]), x
        assert x["thread_settings"]["threads"] == 1 and x["p50_usual_ms"] > 0
    for x in recs[1:]:
        assert x["compared_with"]["id"] == recs[0]["id"] and x["compared_with"]["p50_ms"] > 0
        # an interval once there are 3 rounds (these quick timings may have fewer)
        assert x["speedup_ci"] is None or x["speedup_ci"][0] <= x["speedup"] <= x["speedup_ci"][1], x
    assert Path(recs[1]["artifact"]).is_file()
    assert recs[2]["fidelity"] > 0.95
    table = run("runs", "--model", "digits-cnn", cwd=tmp_path).stdout
    assert "ort-int8-static" in table and "mine" in table and "accuracy" in table
    listed = json.loads(run("runs", "--json", cwd=tmp_path).stdout)
    assert [x["id"] for x in listed] == [x["id"] for x in recs]
    # the readable table
    r = run(
        "optimize",
        "digits-cnn",
        "--recipe",
        "ort-int8-static",
        "--n-eval",
        "100",
        "--threads",
        "1",
        "--no-reuse",
        cwd=tmp_path,
    )
    text = r.stdout
    assert "p50 ms" in text and "ort-int8-static" in text and "recorded in" in text
    # stderr is no terminal here: progress comes as plain lines, one per stage at least (no silent wait)
    lines = [ln for ln in r.stderr.splitlines() if re.match(r"^\[\s*\d+ s\] ", ln)]
    assert any("ort-int8-static / static-int8" in ln for ln in lines), r.stderr
    assert "\r" not in r.stderr  # no redrawn bars in a log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["optimize", "no-such-model"], "Unknown model 'no-such-model'. Known models:"),
        (["optimize", "digits-cnn", "--recipe", "ort-int9"], "Unknown recipe 'ort-int9'"),
        (["optimize", "digits-cnn", "--threads", "0"], "--threads must be a positive int"),
        (["optimize", "nobody/none", "--n-eval", "5"], "offline"),
    ],
    ids=["model", "recipe", "threads", "offline-hub"],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, args, message):
    r = run(*args, cwd=tmp_path, check=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_unwritable_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run([*EXE, "--store", str(blocker / "runs.sqlite"), "runs"], capture_output=True, text=True)
    assert r.returncode == 2 and "run store" in r.stderr and "Traceback" not in r.stderr
