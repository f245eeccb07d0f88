"""Latency probe: time every architecture of an architecture search on the real device, before any is trained.

``export_probe`` builds each architecture of the space untrained (latency does not depend on the weight values)
and writes one bench bundle per architecture plus a driver::

    probe/
      probe.json          the model (name, fingerprint) and, per architecture, its label and bundle folder
      archs/NN/           an ordinary bench bundle (see bundle.py): model, inputs, expected outputs, run_bench.py
      run_probe.py        runs every bundle's runner on the device, writes latency_table.json
      README.txt

On the device: ``python run_probe.py`` (onnxruntime and numpy only) writes ``latency_table.json``. Back on the
host, ``workbench search MODEL --family architecture --device-table latency_table.json --max-latency-ms ...``
judges the latency limit on the device's numbers; architectures the device did not time are predicted from
the host's timing and the device/host ratio of those it did.

>>> export_probe(model, "probe/")           # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..core.config import check_range
from ..core.context import RunContext
from ..models.registry import LoadedModel
from ..search.nas import ArchitectureSpace, untrained_students
from .bundle import BundleError, write_bundle

__all__ = ["export_probe", "PROBE_RUNNER"]

PROBE_RUNNER = r'''"""Time every architecture of this probe on this device.
Usage: python run_probe.py [--threads N] [--runs N] [--device NAME] [-o latency_table.json]"""
import argparse, json, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    probe = json.loads((HERE / "probe.json").read_text())
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None, help="default: the host's count (ARM: the big cores)")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--device", default=None, help="a name for this device (default: its hostname)")
    ap.add_argument("-o", "--output", default=str(HERE / "latency_table.json"))
    a = ap.parse_args()
    rows, failed, device = [], [], {}
    archs = probe["architectures"]
    for i, arch in enumerate(archs, 1):
        folder = HERE / arch["folder"]
        out = folder / "result.json"
        cmd = [sys.executable, str(folder / "run_bench.py"), "-o", str(out)]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        if a.runs:
            cmd += ["--runs", str(a.runs)]
        print("[%d/%d] %s" % (i, len(archs), arch["architecture"]), flush=True)
        done = subprocess.run(cmd)
        if done.returncode != 0 or not out.is_file():
            failed.append({"architecture": arch["architecture"], "error": "runner exited with %d" % done.returncode})
            continue
        res = json.loads(out.read_text())
        device = res["device"]
        rows.append({"architecture": arch["architecture"], "p50_ms": res["p50_ms"], "p90_ms": res["p90_ms"],
                     "artifact_sha256": res["artifact_sha256"], "threads": res["threads"],
                     "max_abs_diff_vs_host": res["max_abs_diff_vs_host"]})
    table = {"format": 1, "kind": "latency-table", "model": probe["model"], "fingerprint": probe["fingerprint"],
             "device": a.device or device.get("node") or "device", "cpu": device, "rows": rows, "failed": failed,
             "measured_at": time.time()}
    Path(a.output).write_text(json.dumps(table, indent=2))
    print("%d architectures timed, %d failed -> %s" % (len(rows), len(failed), a.output))
    return 1 if failed and not rows else 0


if __name__ == "__main__":
    sys.exit(main())
'''


def export_probe(
    model: LoadedModel,
    out_dir: str | Path,
    space: ArchitectureSpace | None = None,
    *,
    threads: int = 1,
    warmup: int = 10,
    runs: int = 50,
    overwrite: bool = False,
    ctx: RunContext | None = None,
) -> Path:
    """Write the latency probe of ``space``'s architectures of ``model`` to ``out_dir`` (see the module docstring)."""
    check_range("export_probe", "threads", threads, 1, 1024, integer=True)
    check_range("export_probe", "runs", runs, 1, 100_000, integer=True)
    check_range("export_probe", "warmup", warmup, 0, 10_000, integer=True)
    space = space or ArchitectureSpace()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise BundleError(f"{out} exists and is not empty; pass overwrite=True or choose another folder.")
        shutil.rmtree(out)
    ctx = ctx or RunContext()
    archs = space.points(model)
    entries: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    ctx.begin(f"{model.name} / latency probe", total=len(archs))
    with tempfile.TemporaryDirectory(prefix="wb-probe-") as tmp:
        for i, (arch, art, _facts, error) in enumerate(untrained_students(model, archs, ctx, threads, Path(tmp))):
            if error is not None:
                failed.append({"architecture": arch.label, "error": error})
                continue
            folder = f"archs/{i:02d}"
            write_bundle(
                out / folder,
                art.path,
                "onnxruntime",
                model,
                identity={
                    "candidate_id": f"untrained:{arch.label}",
                    "candidate_key": None,
                    "model": model.name,
                    "architecture": arch.label,
                },
                threads=threads,
                warmup=warmup,
                runs=runs,
                host_p50_ms=None,
                title=f"Latency probe of {model.name}, architecture {arch.label} (untrained)",
                back_home="run ../../run_probe.py instead: it times every architecture of the probe",
            )
            entries.append({"architecture": arch.label, "folder": folder, "params": arch.params()})
            ctx.step(message=arch.label)
    probe = {
        "format": 1,
        "model": model.name,
        "fingerprint": model.fingerprint[:12],
        "architectures": entries,
        "not_built": failed,
    }
    (out / "probe.json").write_text(json.dumps(probe, indent=2))
    (out / "run_probe.py").write_text(PROBE_RUNNER)
    (out / "README.txt").write_text(
        f"Latency probe of {model.name}: {len(entries)} architectures, untrained (latency does not depend on the "
        "weights).\n\nOn the device (Python 3.8+):\n    pip install onnxruntime numpy\n    python run_probe.py"
        "   # writes latency_table.json\n\nBack on the host:\n"
        f"    workbench search {model.name} --family architecture --device-table latency_table.json "
        "--max-latency-ms MS\n"
    )
    return out
