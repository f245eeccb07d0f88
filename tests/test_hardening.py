"""Bad arguments get the template error (parameter, value, valid choices), never a silent wrong result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import workbench as wb


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"n_eval": "10"}, "'n_eval' parameter of load_model must be a positive int"),
        ({"n_eval": 0}, "'n_eval' parameter of load_model must be a positive int"),
        ({"n_eval": True}, "'n_eval' parameter of load_model must be a positive int"),
        ({"seed": -1}, "'seed' parameter of load_model must be an int >= 0"),
    ],
)
def test_load_model_checks_its_numbers(kw, words):
    with pytest.raises(wb.ConfigError) as e:
        wb.load_model("digits-cnn", **kw)
    assert words in str(e.value)


@pytest.mark.parametrize("path", [42, "", "   "])
def test_a_store_path_that_is_not_a_path_is_refused(path):
    with pytest.raises(wb.StoreError) as e:
        wb.RunStore(path)
    assert "non-empty path" in str(e.value) and repr(path) in str(e.value)


def test_load_model_takes_a_path_object(tmp_path):
    import torch

    net = torch.nn.Linear(3, 2)
    f = tmp_path / "lin.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3),), str(f), input_names=["x"], dynamo=False)
    m = wb.load_model(Path(f), n_eval=4)
    assert m.name == "lin" and len(m.data.eval) == 4


def test_one_recipe_name_where_a_list_is_expected_is_that_list():
    cands = wb.optimize("digits-cnn", "ort-fp32", store=":memory:", n_eval=30, bench=wb.BenchConfig(warmup=1, runs=3))
    assert [c.recipe_name for c in cands] == ["baseline", "ort-fp32"]


def test_load_options_with_a_loaded_model_are_refused():
    m = wb.load_model("digits-cnn", n_eval=30)
    with pytest.raises(wb.ConfigError) as e:
        wb.optimize(m, [], store=":memory:", n_eval=10)
    assert "n_eval" in str(e.value) and "already loaded" in str(e.value)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_STORE": str(cwd / "runs.sqlite")}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["optimize", "digits-cnn", "--threads", str((os.cpu_count() or 1) + 997)], "CPU cores of this machine"),
        (["optimize", "digits-cnn", "--n-eval", "0"], "must be a positive int"),
        (["--store", "", "optimize", "digits-cnn"], "non-empty path"),
    ],
)
def test_cli_numbers_and_paths_are_checked(args, words, tmp_path):
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert words in r.stderr and "Traceback" not in r.stderr
    if (tmp_path / "runs.sqlite").exists():  # nothing was measured
        assert wb.RunStore(tmp_path / "runs.sqlite").candidates() == []


def test_optimize_without_recipes_runs_the_default_set():
    """`workbench optimize MODEL` (and make demo) with no --recipe: the task's defaults, else DEFAULT_RECIPES."""
    cands = wb.optimize("digits-cnn", store=":memory:", n_eval=30, bench=wb.BenchConfig(warmup=1, runs=3))
    assert [c.recipe_name for c in cands] == ["baseline", *wb.DEFAULT_RECIPES]
    assert all(c.status in ("ok", "degraded") for c in cands), [(c.recipe_name, c.error) for c in cands]
