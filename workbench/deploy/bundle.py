"""Device bench bundle: measure a candidate on the real device, then record the result beside the host's.

``export_bundle`` writes a folder a user copies to the device (a Raspberry Pi, a phone under Termux)::

    bundle/
      manifest.json     candidate id, key, recipe, artifact sha256, per-file sha256, bench settings
      model/            the candidate's ONNX file(s), ExecuTorch .pte or LiteRT .tflite, exactly as measured on the host
      inputs/*.npy      one batch-1 example per model input
      expected.npy      the host's output on those inputs (the device checks it gets the same)
      run_bench.py      the runner: needs only that format's runtime and numpy (onnxruntime; executorch, whose
                        Python runtime runs on torch tensors; ai-edge-litert)
      README.txt        what to run

On the device: ``python run_bench.py`` writes ``result.json``. Back on the host,
``import_bundle_result("result.json", store)`` checks the result belongs to the candidate (same id,
same artifact sha256, same files) and records it as a new candidate measured on the device, linked
to the host one. A result that does not match is refused with the reason.

>>> path = export_bundle(cand, "bundle/", model)          # doctest: +SKIP
>>> dev = import_bundle_result("result.json", store)       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import file_sha256
from ..core.errors import StoreError, WorkbenchError
from ..models.registry import LoadedModel
from ..store.candidate import Candidate
from ..store.runstore import RunStore

__all__ = [
    "BundleError",
    "export_bundle",
    "write_bundle",
    "import_bundle_result",
    "device_measurements",
    "RUNNER",
    "RUNNER_EXECUTORCH",
    "RUNNER_LITERT",
]

_FORMAT = 1


class BundleError(WorkbenchError):
    """A bundle cannot be written, or a device result does not match its candidate."""


# The runner that goes to the device. Only onnxruntime + numpy; Python 3.8+. No workbench import.
RUNNER = r'''"""Measure this bundle's model on this device. Usage: python run_bench.py [--threads N] [--runs N] [-o result.json]"""
import argparse, hashlib, json, os, platform, sys, time
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent


def sha256(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def artifact_sha(folder):
    # the workbench's artifact hash: file names and contents of the model folder, in name order
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(sha256(p).encode())
    return h.hexdigest()


ARM = platform.machine().lower() in ("aarch64", "arm64", "armv7l", "armv8l")


def big_cores():
    # on ARM big.LITTLE SoCs (phones, RK3588 boards) the cores with the highest max frequency; [] when unknown
    freq = {}
    for f in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        try:
            freq[int(f.parent.parent.name[3:])] = int(f.read_text())
        except (OSError, ValueError):
            pass
    top = max(freq.values(), default=None)
    return sorted(c for c, v in freq.items() if v == top) if top is not None else []


def main():
    man = json.loads((HERE / "manifest.json").read_text())
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None, help="default: the host's count (ARM: at most the big cores)")
    ap.add_argument("--warmup", type=int, default=man["warmup"])
    ap.add_argument("--runs", type=int, default=man["runs"])
    ap.add_argument("-o", "--output", default=str(HERE / "result.json"))
    a = ap.parse_args()
    settings = {"ort_spinning": False}
    big = big_cores() if ARM else []
    if a.threads is None:
        a.threads = man["threads"]
        if ARM and big and len(big) < (os.cpu_count() or 1):
            a.threads = min(a.threads, len(big))  # the LITTLE cores would hold the big ones back at every barrier
    if ARM and big and hasattr(os, "sched_setaffinity") and len(big) < (os.cpu_count() or 1):
        try:
            os.sched_setaffinity(0, big)
            settings["pinned_to_cores"] = big
        except OSError:
            pass
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # worker threads sleep between calls, as on the host (a spinning pool burns a phone's battery and heats it)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = HERE / "model" / man["model_file"]
    # graph optimizers the host measured with turned off (see workbench.artifact.session_hints)
    hints = {"disabled_optimizers": man["disabled_optimizers"]} if man.get("disabled_optimizers") else {}
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"], **hints)
    feed = {i.name: np.load(HERE / "inputs" / (i.name + ".npy"), allow_pickle=False) for i in sess.get_inputs()}
    out = sess.run(None, feed)[0]
    expected = np.load(HERE / "expected.npy", allow_pickle=False)
    diff = float(np.max(np.abs(np.asarray(out, dtype=np.float32) - expected))) if expected.size else 0.0
    for _ in range(a.warmup):
        sess.run(None, feed)
    samples = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        samples.append((time.perf_counter() - t0) * 1e3)
    s = sorted(samples)
    pct = lambda q: float(np.percentile(s, q))
    result = {
        "format": man["format"], "candidate_id": man["candidate_id"], "candidate_key": man["candidate_key"],
        "artifact_sha256": artifact_sha(HERE / "model"),
        "files": {p.name: sha256(p) for p in sorted((HERE / "model").iterdir()) if p.is_file()},
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "mean_ms": float(np.mean(s)),
        "samples_ms": samples, "threads": a.threads, "warmup": a.warmup, "runs": a.runs,
        "max_abs_diff_vs_host": diff, "settings": settings,
        "device": {"machine": platform.machine(), "system": platform.system(), "release": platform.release(),
                   "node": platform.node(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                   "python": platform.python_version(), "onnxruntime": ort.__version__, "numpy": np.__version__},
        "measured_at": time.time(),
    }
    Path(a.output).write_text(json.dumps(result, indent=2))
    print("p50 %.3f ms  p90 %.3f ms  (%d runs, %d threads)  max |diff| vs host %.2g  -> %s"
          % (result["p50_ms"], result["p90_ms"], a.runs, a.threads, diff, a.output))


if __name__ == "__main__":
    sys.exit(main())
'''


_EDGE_COMMON = r"""import argparse, hashlib, json, os, platform, sys, time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def sha256(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def measure(man, run, runtime_versions):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=man["threads"])
    ap.add_argument("--warmup", type=int, default=man["warmup"])
    ap.add_argument("--runs", type=int, default=man["runs"])
    ap.add_argument("-o", "--output", default=str(HERE / "result.json"))
    a = ap.parse_args()
    model = HERE / "model" / man["model_file"]
    feed = [np.ascontiguousarray(np.load(HERE / "inputs" / (n + ".npy"), allow_pickle=False)) for n in man["input_names"]]
    call = run(str(model), a.threads)
    out = call(feed)
    expected = np.load(HERE / "expected.npy", allow_pickle=False)
    diff = float(np.max(np.abs(np.asarray(out, dtype=np.float32) - expected))) if expected.size else 0.0
    for _ in range(a.warmup):
        call(feed)
    samples = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        call(feed)
        samples.append((time.perf_counter() - t0) * 1e3)
    s = sorted(samples)
    pct = lambda q: float(np.percentile(s, q))
    result = {
        "format": man["format"], "candidate_id": man["candidate_id"], "candidate_key": man["candidate_key"],
        # an edge program is one file: its sha256 is the artifact's
        "artifact_sha256": sha256(model),
        "files": {p.name: sha256(p) for p in sorted((HERE / "model").iterdir()) if p.is_file()},
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "mean_ms": float(np.mean(s)),
        "samples_ms": samples, "threads": a.threads, "warmup": a.warmup, "runs": a.runs,
        "max_abs_diff_vs_host": diff,
        "device": dict({"machine": platform.machine(), "system": platform.system(), "release": platform.release(),
                        "node": platform.node(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                        "python": platform.python_version(), "numpy": np.__version__}, **runtime_versions()),
        "measured_at": time.time(),
    }
    Path(a.output).write_text(json.dumps(result, indent=2))
    print("p50 %.3f ms  p90 %.3f ms  (%d runs, %d threads)  max |diff| vs host %.2g  -> %s"
          % (result["p50_ms"], result["p90_ms"], a.runs, a.threads, diff, a.output))
"""

# The ExecuTorch runner: only executorch (its Python runtime runs on torch tensors) and numpy. No workbench import.
# On a phone without Python, ExecuTorch's C++ executor_runner runs the same model/model.pte.
RUNNER_EXECUTORCH = (
    '''"""Measure this bundle's ExecuTorch program on this device. Usage: python run_bench.py [--threads N] [--runs N]"""
'''
    + _EDGE_COMMON
    + r"""

def run(model, threads):
    import torch
    from executorch.runtime import Runtime

    try:  # XNNPACK's thread pool is one per process
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(threads)
    except Exception:
        pass
    method = Runtime.get().load_program(model).load_method("forward")
    return lambda feed: method.execute([torch.from_numpy(x) for x in feed])[0].float().numpy()


def versions():
    import executorch.version

    return {"runtime": "executorch", "executorch": getattr(executorch.version, "__version__", "?")}


if __name__ == "__main__":
    sys.exit(measure(json.loads((HERE / "manifest.json").read_text()), run, versions))
"""
)

# The LiteRT runner: only ai-edge-litert (which has Linux aarch64 wheels for a Raspberry Pi) and numpy.
RUNNER_LITERT = (
    '''"""Measure this bundle's LiteRT model on this device. Usage: python run_bench.py [--threads N] [--runs N]"""
'''
    + _EDGE_COMMON
    + r"""

def run(model, threads):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=model, num_threads=threads)  # XNNPACK delegate by default
    it.allocate_tensors()
    sigs = it._get_full_signature_list()
    sig = sigs[next(iter(sigs))]
    arg = lambda k: int(k.rsplit("_", 1)[-1]) if k.rsplit("_", 1)[-1].isdigit() else 1 << 30
    ins = {d["index"]: d for d in it.get_input_details()}
    outs = {d["index"]: d for d in it.get_output_details()}
    inputs = [ins[sig["inputs"][k]] for k in sorted(sig["inputs"], key=arg)]
    out = outs[sig["outputs"][sorted(sig["outputs"], key=arg)[0]]]

    def call(feed):
        for x, d in zip(feed, inputs):
            scale, zero = d["quantization"]
            if np.dtype(d["dtype"]).kind in "iu" and scale and x.dtype.kind == "f":  # full INT8: quantized inputs
                info = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale) + zero, info.min, info.max)
            it.set_tensor(d["index"], np.ascontiguousarray(x.astype(d["dtype"])))
        it.invoke()
        y = it.get_tensor(out["index"])
        scale, zero = out["quantization"]
        return ((y.astype(np.float32) - zero) * scale) if (scale and y.dtype.kind in "iu") else y.astype(np.float32)

    return call


def versions():
    from importlib.metadata import version

    return {"runtime": "litert", "ai_edge_litert": version("ai-edge-litert")}


if __name__ == "__main__":
    sys.exit(measure(json.loads((HERE / "manifest.json").read_text()), run, versions))
"""
)

#: runtime -> (runner script, what README.txt tells the device to install)
_RUNNERS = {
    "onnxruntime": (RUNNER, "pip install onnxruntime numpy"),
    "executorch": (
        RUNNER_EXECUTORCH,
        "pip install executorch==1.5.1 numpy   # its Python runtime runs on torch tensors (torch comes with it);\n"
        "    # without Python (a phone): ExecuTorch's C++ executor_runner --model_path model/model.pte",
    ),
    "litert": (RUNNER_LITERT, "pip install ai-edge-litert==2.3.0 numpy"),
}


def export_bundle(
    candidate: Candidate | str,
    out_dir: str | Path,
    model: LoadedModel,
    *,
    store: RunStore | None = None,
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 50,
    overwrite: bool = False,
) -> Path:
    """Write the bench bundle of an ONNX, ExecuTorch or LiteRT candidate to ``out_dir`` and return the folder."""
    from ..core.config import check_range

    check_range("export_bundle", "runs", runs, 1, 100_000, integer=True)
    check_range("export_bundle", "warmup", warmup, 0, 10_000, integer=True)
    if threads is not None:
        check_range("export_bundle", "threads", threads, 1, 1024, integer=True)
    if isinstance(candidate, str):
        if store is None:
            raise BundleError("export_bundle got a candidate id: pass store= to look it up.")
        candidate = store.get(candidate)
    if candidate.runtime not in _RUNNERS or not candidate.artifact_path:
        raise BundleError(
            f"Candidate {candidate.id} ({candidate.recipe_name}) is a {candidate.runtime} model; a device "
            "bundle needs an ONNX candidate, or an ExecuTorch (.pte) or LiteRT (.tflite) one (the runner needs only "
            "that runtime and numpy): run an ort-*, executorch-* or litert-* recipe first."
        )
    if candidate.model != model.name:
        raise BundleError(f"Candidate {candidate.id} belongs to model {candidate.model!r}, not {model.name!r}.")
    src = Path(candidate.artifact_path)
    if not src.is_file():
        raise BundleError(f"The artifact of candidate {candidate.id} is missing ({src}); rerun its recipe.")
    return write_bundle(
        out_dir,
        src,
        candidate.runtime,
        model,
        identity={
            "candidate_id": candidate.id,
            "candidate_key": candidate.key,
            "model": candidate.model,
            "recipe": candidate.recipe_name,
            "steps": candidate.recipe.get("steps", []),
        },
        threads=threads or candidate.threads or 1,
        warmup=warmup,
        runs=runs,
        host_p50_ms=candidate.get("p50_ms"),
        expected_sha=candidate.artifact_sha256,
        overwrite=overwrite,
        title=f"Bench bundle of candidate {candidate.id} ({candidate.recipe_name}) of {candidate.model}",
        back_home="workbench import-bundle result.json",
    )


def write_bundle(
    out_dir: str | Path,
    src: Path,
    runtime: str,
    model: LoadedModel,
    *,
    identity: dict[str, Any],
    threads: int,
    warmup: int,
    runs: int,
    host_p50_ms: float | None,
    expected_sha: str | None = None,
    overwrite: bool = False,
    title: str,
    back_home: str,
) -> Path:
    """Write one bundle folder for the model file ``src`` (its folder's files for ONNX): the model, the inputs,
    the host's outputs, the manifest (``identity`` + what the runner needs) and the runtime's runner."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise BundleError(f"{out} exists and is not empty; pass overwrite=True or choose another folder.")
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    (out / "inputs").mkdir()
    edge = runtime != "onnxruntime"
    for p in [src] if edge else sorted(src.parent.iterdir()):  # an edge program is one self-contained file
        if p.is_file():
            shutil.copy2(p, out / "model" / p.name)
    inputs = model.bench_inputs()
    for name, arr in inputs.items():
        np.save(out / "inputs" / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    from ..core.artifact import edge_artifact, onnx_artifact, session_hints

    if edge:
        art = edge_artifact(out / "model" / src.name, model.baseline.input_names)
    else:
        art = onnx_artifact(out / "model" / src.name)
    expected = art.runner(threads)(inputs)
    np.save(out / "expected.npy", expected.astype(np.float32), allow_pickle=False)
    sha = file_sha256(out / "model" / src.name) if edge else _artifact_sha(out / "model")
    if expected_sha and sha != expected_sha:
        raise BundleError(
            f"The artifact of candidate {identity.get('candidate_id')} changed on disk since it was measured "
            f"(sha256 {sha[:12]} != recorded {expected_sha[:12]}); rerun its recipe."
        )
    manifest = {
        "format": _FORMAT,
        **identity,
        "artifact_sha256": sha,
        "model_file": src.name,
        "runtime": runtime,
        "input_names": list(model.baseline.input_names),
        "files": {p.name: file_sha256(p) for p in sorted((out / "model").iterdir())},
        "inputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in inputs.items()},
        "threads": threads,
        "disabled_optimizers": [] if edge else session_hints(out / "model" / src.name)["disabled_optimizers"],
        "warmup": warmup,
        "runs": runs,
        "host": {"p50_ms": host_p50_ms, "machine": platform.machine(), "node": platform.node()},
        "created_at": time.time(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    runner, install = _RUNNERS[runtime]
    (out / "run_bench.py").write_text(runner)
    (out / "README.txt").write_text(
        f"{title}, a {runtime} model.\n\n"
        f"On the device (Python 3.8+):\n    {install}\n    python run_bench.py  # writes result.json\n\n"
        f"Back on the host:\n    {back_home}\n"
    )
    return out


def _artifact_sha(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(file_sha256(p).encode())
    return h.hexdigest()


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _refuse(reason: str) -> BundleError:
    return BundleError(f"Device result refused: {reason}. Nothing was recorded.")


def import_bundle_result(
    result: str | Path | Mapping[str, Any],
    store: RunStore,
    *,
    device_name: str | None = None,
    parity_atol: float = 1e-2,
) -> Candidate:
    """Record a device result (``result.json`` from ``run_bench.py``) as a new candidate beside the host one.

    Refused (BundleError, with the reason) when the id is unknown, the model files or their hash differ
    from the candidate's, the format is unknown, the timing samples are missing, or the device's outputs
    differ from the host's by more than ``parity_atol``.
    """
    if isinstance(result, (str, Path)):
        try:
            data = json.loads(Path(result).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"No device result at {result}.") from None
        except UnicodeDecodeError:
            raise _refuse(f"{result} is not UTF-8 text: a result.json written by run_bench.py is") from None
        except OSError as e:
            raise _refuse(f"cannot read {result}: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise _refuse(f"{result} is not valid JSON ({e})") from None
    else:
        data = dict(result)
    if not isinstance(data, dict):
        raise _refuse("a result must be a JSON object")
    missing = [
        k for k in ("format", "candidate_id", "artifact_sha256", "p50_ms", "samples_ms", "device") if k not in data
    ]
    if missing:
        raise _refuse(f"field(s) {', '.join(missing)} missing; was it written by run_bench.py?")
    if data["format"] != _FORMAT:
        raise _refuse(f"format {data['format']!r}; this workbench reads format {_FORMAT}")
    try:
        host = store.get(str(data["candidate_id"]))
    except StoreError:
        raise _refuse(
            f"no candidate {data['candidate_id']!r} in {store.path}; import it into the store that exported the bundle"
        ) from None
    if host.artifact_sha256 != data["artifact_sha256"]:
        raise _refuse(
            f"the model measured on the device (sha256 {str(data['artifact_sha256'])[:12]}) is not the "
            f"artifact of candidate {host.id} (sha256 {str(host.artifact_sha256)[:12]}): the bundle was "
            "modified or belongs to another candidate"
        )
    if data.get("candidate_key") not in (None, host.key):
        raise _refuse(f"candidate key {data.get('candidate_key')!r} does not match {host.key!r}")
    if host.status not in ("ok", "degraded"):
        raise _refuse(f"candidate {host.id} is {host.status}: only a measured candidate gets device measurements")
    samples = data["samples_ms"]
    if (
        not isinstance(samples, list)
        or not samples
        or not all(_number(x) and math.isfinite(x) and x > 0 for x in samples)
    ):
        raise _refuse("'samples_ms' must be a non-empty list of finite positive numbers (milliseconds)")
    threads = data.get("threads")
    if threads is not None and not (_number(threads) and isinstance(threads, int) and threads >= 1):
        raise _refuse(f"'threads' must be a positive int, got {threads!r}")
    for k in ("measured_at", "candidate_key"):
        if data.get(k) is not None and not isinstance(data[k], (str, int, float)):
            raise _refuse(f"'{k}' must be a string or a number, got {type(data[k]).__name__}")
    if not isinstance(data["device"], (dict, str)):
        raise _refuse(f"'device' must be an object or a name, got {type(data['device']).__name__}")
    diff = data.get("max_abs_diff_vs_host")
    if diff is not None and not (_number(diff) and math.isfinite(diff)):
        raise _refuse(f"'max_abs_diff_vs_host' must be a finite number, got {diff!r}")
    if diff is not None and not (diff <= parity_atol):
        raise _refuse(
            f"the device's outputs differ from the host's by {diff:.3g} (> {parity_atol:g}): a different "
            "model or a broken runtime on the device"
        )
    dev = data["device"] if isinstance(data["device"], dict) else {"name": str(data["device"])}
    name = device_name or dev.get("node") or dev.get("machine") or "device"
    s = np.asarray(samples, dtype=float)
    quality = {
        k: host.metrics[k]
        for k in ("accuracy", "accuracy_ci", "accuracy_drop", "fidelity", "cosine", "agreement", "size_bytes", "params")
        if k in host.metrics
    }
    metrics = {
        **quality,
        "p50_ms": float(np.percentile(s, 50)),
        "p90_ms": float(np.percentile(s, 90)),
        "p99_ms": float(np.percentile(s, 99)),
        "mean_ms": float(s.mean()),
        "cv": float(s.std() / max(s.mean(), 1e-12)),
        "samples_ms": [float(x) for x in s],
        "threads": data.get("threads"),
        "max_abs_diff_vs_host": diff,
        "host_p50_ms": host.get("p50_ms"),
        # the runner's thread settings on the device (ARM: big cores only, spinning off)
        "thread_settings": data["settings"] if isinstance(data.get("settings"), dict) else None,
    }
    key = hashlib.sha256(f"device|{host.key}|{name}|{data.get('measured_at')}".encode()).hexdigest()[:24]
    if (dup := store.find(key)) is not None:
        raise _refuse(f"this result is already recorded as candidate {dup.id} ({dup.recipe_name}): not imported twice")
    rec = replace(
        host.derive(
            key=key,
            recipe_name=f"{host.recipe_name} @ {name}",
            parent_id=host.id,
            metrics=metrics,
            env={"device": dev},
            threads=data.get("threads"),
            error=None,
            status="ok",
        ),
        notes={**host.notes, "measured_on": "device", "device": name, "host_candidate": host.id},
    )
    return store.add(rec)


def device_measurements(store: RunStore, candidate_id: str) -> list[dict[str, Any]]:
    """The host measurement of a candidate and every device measurement imported for it, side by side."""
    host = store.get(candidate_id)
    rows = [
        {
            "where": "host",
            "id": host.id,
            "p50_ms": host.get("p50_ms"),
            "p90_ms": host.get("p90_ms"),
            "threads": host.threads,
            "device": host.env.get("cpu", {}) if isinstance(host.env, dict) else None,
        }
    ]
    for c in store.candidates(host.model):
        if c.notes.get("host_candidate") == host.id:
            rows.append(
                {
                    "where": c.notes.get("device"),
                    "id": c.id,
                    "p50_ms": c.get("p50_ms"),
                    "p90_ms": c.get("p90_ms"),
                    "threads": c.threads,
                    "device": c.env.get("device"),
                }
            )
    return rows
