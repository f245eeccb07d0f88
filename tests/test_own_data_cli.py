"""One CLI run per task kind on the user's own files (written here), as a user would type it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_STORE": str(cwd / "runs.sqlite")}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_sensor_windows_from_a_long_csv(tmp_path):
    """Real smartwatch readings (BasicMotions) written as one row per time step, one window id per recording."""
    from workbench.data.bundled import basic_motions

    train, test = basic_motions()
    with open(tmp_path / "motion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["window", "ax", "ay", "az", "gx", "gy", "gz", "activity"])
        for k, ds in enumerate((train, test)):
            for i in range(len(ds)):
                for t in range(ds.series.shape[2]):
                    w.writerow([f"{k}-{i}", *ds.series[i, :, t].round(5), ds.label_names[ds.labels[i]]])
    args = ["optimize", "sensor-cnn", "--data", "motion.csv", "--group-column", "window"]
    args += ["--label-column", "activity", "--series-columns", "ax,ay,az,gx,gy,gz", "--recipe", "ort-int8-static"]
    r = _cli(*args, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    base, int8 = json.loads(r.stdout)
    assert base["task"] == "series-classification"
    assert base["accuracy"] >= 0.8 and int8["accuracy"] >= 0.8  # 24 held-out windows of 4 activities
    r = _cli(*args, cwd=tmp_path)
    assert "data: motion.csv (csv, 80 rows)" in r.stderr and "Walking 20" in r.stderr


def test_image_folder_with_a_bad_file(tmp_path):
    from PIL import Image

    from workbench.data.bundled import mnist_subset

    ds = mnist_subset()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(ds), 300, replace=False):  # real handwritten digits as PNG files, a folder per class
        folder = tmp_path / "photos" / ds.label_names[ds.labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((ds.arrays["pixels"][i, 0] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "photos" / "3" / "notes.txt").write_text("not an image")
    r = _cli("optimize", "mnist-dscnn", "--data", "photos", "--recipe", "ort-int8-static", cwd=tmp_path)
    assert r.returncode == 2 and "notes.txt" in r.stderr and "--on-bad-files skip" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli(
        "optimize", "mnist-dscnn", "--data", "photos", "--on-bad-files", "skip", "--recipe", "ort-int8-static",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    base, int8 = json.loads(r.stdout)
    assert base["task"] == "image-classification" and base["accuracy"] >= 0.8


def test_language_model_on_the_users_documents(tmp_path):
    from workbench.lm.testing import tiny_lm_folder

    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(6):
        (notes / f"{i}.txt").write_text(f"Meeting note {i}: the pump in hall {i} was serviced and runs quietly. " * 6)
    r = _cli("optimize", str(tiny_lm_folder()), "--data", "notes", "--n-eval", "4", "--recipe", "lm-bf16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "data: " in r.stderr and "perplexity on the first 4 documents" in r.stderr


@pytest.mark.slow
def test_text_classification_through_minilm_on_a_jsonl_file(tmp_path):
    from workbench.data.splits import BBC_LABELS, bbc_texts

    texts, labels = bbc_texts()
    rng = np.random.default_rng(0)
    with open(tmp_path / "tickets.jsonl", "w") as f:
        for i in rng.choice(len(texts), 120, replace=False):
            f.write(json.dumps({"body": texts[i][:400], "team": BBC_LABELS[labels[i]]}) + "\n")
    args = ["optimize", "minilm", "--data", "tickets.jsonl", "--label-column", "team", "--recipe", "ort-int8-dynamic"]
    r = _cli(*args, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    base, int8 = json.loads(r.stdout)
    assert base["accuracy"] >= 0.8 and int8["accuracy"] >= 0.8
    r = _cli("optimize", "minilm", "--data", "tickets.jsonl", "--text-column", "bdy", cwd=tmp_path)
    assert r.returncode == 2 and "bdy" in r.stderr and "body" in r.stderr and "Traceback" not in r.stderr
