"""Device bench bundle: run it in a clean venv with only onnxruntime + numpy, import its result."""

from __future__ import annotations

import json
import subprocess
import venv

import pytest

from workbench import BenchConfig
from workbench.deploy.bundle import BundleError, device_measurements, export_bundle, import_bundle_result
from workbench.optimize import run_recipe


@pytest.fixture(scope="session")
def device_python(test_artifacts):
    """A virtual environment with only onnxruntime and numpy (built once, kept under the test artifacts)."""
    d = test_artifacts / "bundle-venv"
    py = d / "bin" / "python"
    ok = (
        py.exists()
        and subprocess.run([str(py), "-c", "import onnxruntime, numpy"], capture_output=True).returncode == 0
    )
    if not ok:
        venv.EnvBuilder(clear=True, with_pip=True).create(d)
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "onnxruntime==1.32.0", "numpy"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            pytest.skip(
                f"cannot install onnxruntime + numpy into a fresh venv (no package registry?): {r.stderr[-300:]}"
            )
    return py


@pytest.fixture
def int8(digits_model, store):
    return run_recipe(digits_model, "ort-int8-dynamic", store=store, bench=BenchConfig(warmup=2, runs=5, threads=1))


def test_bundle_runs_on_a_bare_device_and_imports(digits_model, store, int8, tmp_path, device_python):
    out = export_bundle(int8, tmp_path / "bundle", digits_model, threads=1, runs=20)
    assert {p.name for p in out.iterdir()} >= {"manifest.json", "model", "inputs", "expected.npy", "run_bench.py"}
    man = json.loads((out / "manifest.json").read_text())
    assert man["candidate_id"] == int8.id and man["artifact_sha256"] == int8.artifact_sha256
    # the device environment has neither torch nor the workbench: the runner needs only ORT + numpy
    probe = subprocess.run([str(device_python), "-I", "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0
    r = subprocess.run(
        [str(device_python), "-I", "run_bench.py", "--runs", "15"], cwd=out, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    assert len(result["samples_ms"]) == 15 and result["max_abs_diff_vs_host"] < 1e-4
    assert result["settings"]["ort_spinning"] is False  # as on the host; ARM adds its big-core choice here
    dev = import_bundle_result(out / "result.json", store, device_name="pi")
    assert dev.get("thread_settings") == result["settings"]
    assert dev.parent_id == int8.id and dev.id != int8.id and dev.key != int8.key
    assert dev.get("p50_ms") > 0 and dev.get("accuracy") == int8.get("accuracy")
    assert dev.notes["measured_on"] == "device" and dev.recipe_name == "ort-int8-dynamic @ pi"
    rows = device_measurements(store, int8.id)
    assert [r["where"] for r in rows] == ["host", "pi"] and rows[1]["p50_ms"] == dev.get("p50_ms")
    # the device record never stands in for the host candidate when a recipe is reused
    assert store.find(int8.key).id == int8.id


def _fake_result(cand, **changes):
    base = {
        "format": 1,
        "candidate_id": cand.id,
        "candidate_key": cand.key,
        "artifact_sha256": cand.artifact_sha256,
        "p50_ms": 1.0,
        "samples_ms": [1.0, 1.1, 0.9],
        "device": {"node": "pi"},
        "max_abs_diff_vs_host": 0.0,
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"artifact_sha256": "0" * 64}, "is not the artifact of candidate"),
        ({"candidate_id": "nope"}, "no candidate 'nope'"),
        ({"candidate_key": "other"}, "does not match"),
        ({"samples_ms": []}, "non-empty list"),
        ({"max_abs_diff_vs_host": 3.0}, "outputs differ from the host's by 3"),
        ({"format": 99}, "format 99"),
        ({"samples_ms": [1.0, float("nan")]}, "finite positive"),
        ({"samples_ms": [1.0, -2.0]}, "finite positive"),
        ({"samples_ms": [1.0, "2"]}, "finite positive"),
        ({"samples_ms": [True, 1.0]}, "finite positive"),
        ({"threads": 2.5}, "'threads' must be a positive int"),
        ({"threads": "4"}, "'threads' must be a positive int"),
        ({"device": 42}, "'device' must be an object or a name"),
        ({"max_abs_diff_vs_host": "0"}, "must be a finite number"),
    ],
    ids=[
        "sha", "unknown-id", "key", "no-samples", "parity", "format", "nan", "negative", "text", "bool",
        "float-threads", "text-threads", "device", "text-diff",
    ],
)  # fmt: skip
def test_mismatched_result_is_refused_with_reason(store, int8, changes, reason):
    n = len(store.candidates())
    with pytest.raises(BundleError, match=reason):
        import_bundle_result(_fake_result(int8, **changes), store)
    assert len(store.candidates()) == n  # nothing recorded


def test_bundle_needs_an_onnx_candidate(digits_model, store, tmp_path):
    bf16 = run_recipe(digits_model, "bf16", store=store, bench=BenchConfig(warmup=1, runs=2, threads=1))
    with pytest.raises(BundleError, match="needs an ONNX candidate"):
        export_bundle(bf16, tmp_path / "b", digits_model)


def test_cli_bundle_and_import(digits_model, store, int8, tmp_path, device_python, capsys):
    from workbench.cli.main import main

    out = tmp_path / "b"
    assert main(["--store", str(store.path), "bundle", int8.id, "-o", str(out), "--threads", "1", "--runs", "5"]) == 0
    r = subprocess.run(
        [str(device_python), "-I", str(out / "run_bench.py"), "--runs", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    capsys.readouterr()
    assert main(["--store", str(store.path), "import-bundle", str(out / "result.json"), "--device", "phone"]) == 0
    table = capsys.readouterr().out
    assert "host" in table and "phone" in table
    assert main(["--store", str(store.path), "bundle", int8.id, "-o", str(out)]) == 2  # exists: refused, not clobbered
    assert (out / "result.json").exists()


def test_a_result_is_imported_once_and_never_for_a_failed_candidate(store, int8, tmp_path):
    from dataclasses import replace

    res = _fake_result(int8, measured_at="2026-12-01T10:00:00")
    import_bundle_result(res, store)
    n = len(store.candidates())
    with pytest.raises(BundleError, match="already recorded"):
        import_bundle_result(res, store)
    failed = store.add(replace(int8.derive(key="failed-one"), status="failed", error="boom"))
    with pytest.raises(BundleError, match="is failed"):
        import_bundle_result({**res, "candidate_id": failed.id, "candidate_key": failed.key}, store)
    assert len(store.candidates()) == n + 1  # only the failed candidate added above
    bad = tmp_path / "result.json"
    bad.write_bytes(b"\xff\xfe not utf-8 \x80")
    with pytest.raises(BundleError, match="not UTF-8"):
        import_bundle_result(bad, store)


@pytest.mark.parametrize("kw", [{"runs": 0}, {"warmup": -1}, {"threads": 0}])
def test_a_bundle_refuses_bad_counts(digits_model, store, int8, tmp_path, kw):
    import workbench as wb

    with pytest.raises(wb.ConfigError):
        export_bundle(int8, tmp_path / "b", digits_model, **kw)
