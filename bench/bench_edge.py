"""ONNX Runtime, ExecuTorch and LiteRT candidates of each bundled model, side by side in one run, on this machine.

For minilm, digits-cnn, mnist-dscnn and sensor-cnn: the FP32 PyTorch baseline, ONNX Runtime FP32 and dynamic INT8
(and static INT8 for the CNNs), ExecuTorch FP32 / INT8 (XNNPACK) and LiteRT FP32 / dynamic-range INT8 / full INT8.
Each candidate is built and measured by the workbench (``run_recipe``: accuracy with its CI, fidelity to FP32, peak
memory, size, the delegation report); then every candidate of one model is re-timed round-robin in one
``side_by_side`` run (batch 1, ``--threads``), so the latencies of one model compare. A candidate that cannot be
built is listed with the reason. Writes bench/results/edge.json and bench/results/edge.md (the README's table).
Not a test: run it by hand, on a quiet machine (about 20 minutes on 2 cores, most of it the MiniLM conversions).

    python bench/bench_edge.py [--threads 1] [--models digits-cnn sensor-cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))

import workbench as wb  # noqa: E402
from workbench.core.artifact import edge_artifact  # noqa: E402
from workbench.core.env import cpu_flags, fingerprint  # noqa: E402
from workbench.measure.benchmark import side_by_side  # noqa: E402

MODELS = {"minilm": 96, "digits-cnn": None, "mnist-dscnn": 500, "sensor-cnn": None}  # n_eval (None: all)
CNN = ("ort-fp32", "ort-int8-dynamic", "ort-int8-static")
EDGE = ("executorch-fp32", "executorch-int8", "litert-fp32", "litert-int8-dynamic", "litert-int8")
RECIPES = {"minilm": ("ort-fp32", "ort-int8-dynamic", *EDGE)}
FORMAT = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "executorch": "ExecuTorch", "litert": "LiteRT"}


def cpu_name() -> str:
    model = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    flags = set(cpu_flags())
    isa = (
        "AVX-512 VNNI"
        if "avx512_vnni" in flags
        else "AVX-512"
        if "avx512f" in flags
        else "AVX2"
        if "avx2" in flags
        else ""
    )
    return f"{model}, {os.cpu_count()} cores" + (f", {isa}" if isa else "")


def artifact_of(c: wb.Candidate, model: wb.LoadedModel) -> wb.Artifact:
    if c.runtime == "torch":
        return model.baseline
    if c.runtime == "onnxruntime":
        return wb.onnx_artifact(Path(c.artifact_path))
    return edge_artifact(Path(c.artifact_path), model.baseline.input_names)


def delegation_cell(c: wb.Candidate) -> str:
    d = (c.notes or {}).get("delegation")
    if not d:
        return ""
    if d["fully_delegated"]:
        return "all in XNNPACK"
    return "fell back: " + ", ".join(d["fallback_ops"]) + f" ({100 * d['fallback_share']:.0f}%)"


def run_model(name: str, n_eval, args, store: wb.RunStore) -> dict:
    t0 = time.monotonic()
    model = wb.load_model(name, n_eval=n_eval)
    bench = wb.BenchConfig(warmup=5, runs=20, threads=args.threads)
    base = wb.run_baseline(model, store=store, bench=bench)
    cands = [base]
    for r in RECIPES.get(name, CNN + EDGE):
        t = time.monotonic()
        c = wb.run_recipe(model, r, store=store, baseline=base, bench=bench)
        print(f"  {name} / {r}: {c.status} in {time.monotonic() - t:.0f}s" + (f" ({c.error[:160]})" if c.error else ""))
        cands.append(c)
    ok = [c for c in cands if c.status in ("ok", "degraded")]
    runners = {c.recipe_name: artifact_of(c, model).runner(args.threads) for c in ok}
    timed = side_by_side(runners, model.bench_inputs(), runs=args.runs, rounds=args.rounds, threads=args.threads)
    ref = timed["baseline"].p50
    rows = []
    for c in cands:
        m = c.metrics or {}
        row = {
            "recipe": c.recipe_name,
            "format": FORMAT.get(c.runtime, c.runtime),
            "status": c.status,
            "error": c.error,
            "accuracy": m.get("accuracy"),
            "accuracy_ci": m.get("accuracy_ci"),
            "fidelity": m.get("fidelity"),
            "size_bytes": m.get("size_bytes"),
            "peak_mem_bytes": m.get("peak_mem_bytes"),
            "delegation": (c.notes or {}).get("delegation"),
            "delegation_summary": delegation_cell(c),
        }
        if c.recipe_name in timed:
            lat = timed[c.recipe_name]
            row.update(p50_ms=lat.p50, p90_ms=lat.p90, speedup_vs_torch_fp32=ref / lat.p50)
        rows.append(row)
    return {"model": name, "n_eval": len(model.data.eval), "seconds": time.monotonic() - t0, "rows": rows}


def fmt(x, spec: str, none: str = "–") -> str:
    return none if x is None else format(x, spec)


def markdown(results: list[dict], cpu: str, threads: int) -> str:
    out = [
        f"Measured on this machine ({cpu}), batch 1, {threads} thread(s); latency re-timed side by side per model "
        "(`bench/bench_edge.py`, `side_by_side`); speed-up against PyTorch FP32 eager of the same model.",
        "",
        "| model | recipe | runtime | accuracy (95% CI) | fidelity | p50 ms | p90 ms | x FP32 | size MB | peak MB | delegation |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for r in res["rows"]:
            if r["status"] not in ("ok", "degraded"):
                msg = (r["error"] or "").split("\n")[0].split("Error: ", 1)[-1]  # the message, not the step prefix
                works = msg[msg.index("Recipes that would work") :] if "Recipes that would work" in msg else ""
                detail = re.search(r" \(\w*Error: ", msg)  # the runtime's own text: in the JSON, not the table
                reason = (msg[: detail.start()] if detail else msg.split(". Recipes")[0]) + (
                    ". " + works if works else ""
                )
                out.append(f"| {res['model']} | {r['recipe']} | {r['format']} | failed: {reason[:300]} ||||||||")
                continue
            ci = r["accuracy_ci"]
            acc = (
                f"{r['accuracy']:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
                if r["accuracy"] is not None
                else "–"
            )
            out.append(
                f"| {res['model']} | {r['recipe']} | {r['format']} | {acc} | {fmt(r['fidelity'], '.3f')} | "
                f"{fmt(r.get('p50_ms'), '.3f')} | {fmt(r.get('p90_ms'), '.3f')} | {fmt(r.get('speedup_vs_torch_fp32'), '.2f')} | "
                f"{fmt(r['size_bytes'] and r['size_bytes'] / 1e6, '.2f')} | {fmt(r['peak_mem_bytes'] and r['peak_mem_bytes'] / 1e6, '.1f')} | "
                f"{r['delegation_summary']} |"
            )
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="threads for every runtime (1: a small device's core)")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per candidate, spread over --rounds")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--out", default=str(HERE / "results" / "edge.json"))
    ap.add_argument("--table-only", action="store_true", help="rewrite the .md table from the JSON of --out")
    args = ap.parse_args()
    if args.table_only:
        saved = json.loads(Path(args.out).read_text())
        Path(args.out).with_suffix(".md").write_text(markdown(saved["models"], saved["cpu"], saved["threads"]))
        return 0
    store = wb.RunStore(Path(tempfile.mkdtemp(prefix="bench-edge-")) / "runs.sqlite")
    cpu = cpu_name()
    print(f"CPU: {cpu}; threads {args.threads}")
    results = []
    for name in args.models:
        results.append(run_model(name, MODELS[name], args, store))
    table = markdown(results, cpu, args.threads)
    payload = {
        "what": "ONNX Runtime, ExecuTorch and LiteRT candidates side by side; figures from one run on this machine",
        "cpu": cpu,
        "env": fingerprint(args.threads),
        "threads": args.threads,
        "runs": args.runs,
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "models": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str))
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
