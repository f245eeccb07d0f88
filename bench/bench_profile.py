"""Why no speed-up, on this CPU's real kernels: dynamic INT8 on digits-cnn against its FP32 ONNX export.

What the tests check on fixed profiles (tests/test_profile.py), measured here: ONNX Runtime's
ConvInteger (what dynamic INT8 turns a Conv into) is a reference implementation, so the integer
convolutions take longer than the float ones did, and `why_no_speedup` names them (slow-kernels).
Target: a slow-kernels finding naming ConvInteger, at more than 1.1x the float convolutions' time, and
a dynamic-quant finding whose share of kernel time lies in (0, 1).

    .venv/bin/python bench/bench_profile.py      # prints the findings, writes bench/results/profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))

import workbench as wb  # noqa: E402
from workbench.measure.explain import why_no_speedup  # noqa: E402
from workbench.optimize import run_recipe  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20, help="profiled runs per model")
    args = ap.parse_args()

    model = wb.load_model("digits-cnn", n_eval=200)
    bench = wb.BenchConfig(warmup=5, runs=20, threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as d:
        store = wb.RunStore(Path(d) / "runs.sqlite")
        fp32 = run_recipe(model, wb.Recipe("fp32", (wb.OnnxExport(),)), store=store, bench=bench)
        dyn = run_recipe(model, wb.Recipe("dyn", (wb.OnnxExport(), wb.DynamicInt8())), store=store, bench=bench)
        exp = why_no_speedup(dyn, fp32, model, threads=args.threads, runs=args.runs)
    print(exp)
    slow = [f for f in exp.findings if f.kind == "slow-kernels" and "ConvInteger" in f.message]
    dq = [f for f in exp.findings if f.kind == "dynamic-quant"]
    ok_slow = bool(slow) and slow[0].share > 1.1
    ok_dq = bool(dq) and 0 < dq[0].share < 1
    print(
        "\nConvInteger slower than float Conv: "
        + (f"{slow[0].share:.2f}x" if slow else "not named")
        + f" (target > 1.1x: {'met' if ok_slow else 'MISSED'})"
    )
    print(
        "DynamicQuantizeLinear share of kernel time: "
        + (f"{100 * dq[0].share:.0f}%" if dq else "not named")
        + f" (target in (0, 100%): {'met' if ok_dq else 'MISSED'})"
    )
    out = {
        "model": "digits-cnn",
        "threads": args.threads,
        "runs": args.runs,
        "speedup": exp.speedup,
        "findings": [{"kind": f.kind, "share": f.share, "message": f.message} for f in exp.findings],
        "load_average_1m_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "targets": {"conv_integer_slower": ok_slow, "dynamic_quant_share": ok_dq},
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "profile.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {HERE / 'results' / 'profile.json'}")
    return 0 if ok_slow and ok_dq else 1


if __name__ == "__main__":
    sys.exit(main())
