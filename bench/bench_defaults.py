"""The bundled defaults for the user's own data, measured: sensor-cnn (UEA BasicMotions) and mnist-dscnn (MNIST 5k).

For each model, in one run: FP32 PyTorch eager (the baseline), FP32 ONNX Runtime, ORT dynamic INT8, ORT static INT8
(QDQ, per-channel conv weights, calibrated on the model's calibration split), and structured pruning (half the
channels removed and fine-tuned, 200 steps) followed by dynamic INT8 (the ``prune-structured-int8`` recipe) or by
static INT8. Accuracy on the model's eval split with its bootstrap 95 % CI (BasicMotions: the official 40-window
TEST split; MNIST: 1000 held-out images), batch-1 p50 latency re-timed round-robin over every variant of a model
(load on a shared machine then hits them alike), file size. Prints a markdown table and writes
bench/results/defaults.json with the CPU, its ISA flags and whether its u8s8 INT8 kernels saturate (no VNNI: then
7-bit INT8 weights are used). Both models are trained first, in a fresh cache, and the training is timed
(``--cached`` reuses cached weights). Not a test: run it by hand (about a minute on 2 cores).

    .venv/bin/python bench/bench_defaults.py             # 1 thread: tiny models' ops are too short to split
    .venv/bin/python bench/bench_defaults.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))

import workbench as wb  # noqa: E402
from workbench.core.env import cpu_flags, u8s8_saturates  # noqa: E402
from workbench.measure.benchmark import side_by_side  # noqa: E402

MODELS = ("sensor-cnn", "mnist-dscnn")
#: (row label, recipe): the registered recipes, and structured pruning followed by static INT8
VARIANTS: tuple[tuple[str, str], ...] = (
    ("ORT FP32", "ort-fp32"),
    ("ORT INT8 dynamic", "ort-int8-dynamic"),
    ("ORT INT8 static (QDQ, per-channel)", "ort-int8-static"),
    ("pruned 50 % + ORT INT8 dynamic", "prune-structured-int8"),
    ("pruned 50 % + ORT INT8 static", "prune-structured-int8-static"),
)


def _row(label: str, c, base: dict) -> dict:
    m = c.metrics
    ci = m.get("accuracy_ci") or [None, None]
    return {
        "variant": label,
        "recipe": c.recipe_name,
        "status": c.status,
        "error": c.error,
        "accuracy": m.get("accuracy"),
        "accuracy_ci95": ci,
        "accuracy_drop_pts": None if m.get("accuracy") is None else 100 * (base["accuracy"] - m["accuracy"]),
        "agreement_with_fp32": m.get("agreement"),
        "n_eval": m.get("n_eval"),
        "p50_ms_sequential": m.get("p50_ms"),
        "size_mb": m["size_bytes"] / 1e6 if m.get("size_bytes") is not None else None,
        "params": m.get("params"),
        "build_s": m.get("build_time_s"),
        "artifact": c.artifact_path,
        "structured_pruning": (c.notes or {}).get("structured_pruning"),
    }


def bench_model(name: str, args, store) -> dict:
    if args.fresh_cache:  # train it here (deterministic: the weights every cache gets), to time the training
        os.environ["WORKBENCH_CACHE"] = tempfile.mkdtemp(prefix=f"bench-defaults-{name}-")
    t0, c0 = time.monotonic(), time.process_time()
    model = wb.load_model(name)
    load_s, load_cpu_s = time.monotonic() - t0, time.process_time() - c0
    bench = wb.BenchConfig(warmup=20, runs=args.runs, threads=args.threads)
    cands = wb.optimize(model, [r for _, r in VARIANTS], store=store, bench=bench, reuse=False)
    base = cands[0].metrics
    rows = [_row("PyTorch FP32 eager (baseline)", cands[0], base)]
    rows += [_row(label, c, base) for (label, _), c in zip(VARIANTS, cands[1:])]
    # re-time every variant round-robin: sequential timings on a shared machine drift with its load
    runners = {rows[0]["variant"]: model.baseline.runner(args.threads)}
    for r in rows[1:]:
        if r["status"] in ("ok", "degraded") and str(r["artifact"]).endswith(".onnx"):
            runners[r["variant"]] = wb.onnx_artifact(Path(r["artifact"])).runner(args.threads)
    timed = side_by_side(runners, model.bench_inputs(), runs=args.runs, rounds=args.rounds, threads=args.threads)
    ort_fp32 = timed.get("ORT FP32")
    for r in rows:
        if r["variant"] in timed:
            t = timed[r["variant"]]
            r.update(p50_ms=t.p50, p90_ms=t.p90)
            r["speedup_vs_torch_fp32"] = timed[rows[0]["variant"]].p50 / t.p50
            r["speedup_vs_ort_fp32"] = ort_fp32.p50 / t.p50 if ort_fp32 else None
    return {
        "model": name,
        "source": model.source,
        "task": model.task.name,
        "params": model.baseline.param_count(),
        "n_train": len(model.data.train) if model.data.train is not None else 0,
        "n_eval": len(model.data.eval),
        "trained_in_fresh_cache": args.fresh_cache,
        "load_s": load_s,
        "load_cpu_s": load_cpu_s,
        "info": {k: v for k, v in model.info.items() if k != "dataset"},
        "rows": rows,
    }


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def markdown(results: list[dict], env: dict, threads: int) -> str:
    flags = ", ".join(env["isa"]) or "none"
    lines = [
        f"CPU: {env['cpu']} ({env['cores']} cores; ISA: {flags}; u8s8 INT8 saturates: {env['u8s8_saturates']}, "
        f"so INT8 weights are {'7-bit' if env['u8s8_saturates'] else 'full-range'}), {threads} thread(s), batch 1.",
        "",
        "| model | variant | accuracy % [95 % CI] | p50 ms | x torch FP32 | x ORT FP32 | size MB | params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for r in res["rows"]:
            if r["status"] not in ("ok", "degraded"):
                lines.append(f"| {res['model']} | {r['variant']} | FAILED: {(r['error'] or '')[:60]} | | | | | |")
                continue
            lo, hi = r["accuracy_ci95"]
            acc = f"{_pct(r['accuracy'])} [{_pct(lo)}, {_pct(hi)}]" + (
                " (degraded)" if r["status"] == "degraded" else ""
            )
            lines.append(
                f"| {res['model']} | {r['variant']} | {acc} | {r.get('p50_ms', float('nan')):.3f} | "
                f"{r.get('speedup_vs_torch_fp32', float('nan')):.1f}x | "
                f"{(r.get('speedup_vs_ort_fp32') or float('nan')):.2f}x | {r['size_mb']:.3f} | {r['params']:,} |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=300, help="timed runs per variant, spread over --rounds")
    ap.add_argument("--rounds", type=int, default=10, help="round-robin rounds for the side-by-side timing")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument(
        "--cached", dest="fresh_cache", action="store_false", help="reuse cached weights instead of training them"
    )
    ap.add_argument("--out", default=str(HERE / "results" / "defaults.json"))
    args = ap.parse_args()

    t0 = time.monotonic()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    store = wb.RunStore(Path(tempfile.mkdtemp(prefix="bench-defaults-")) / "runs.sqlite")
    results = [bench_model(name, args, store) for name in args.models]
    env = wb.fingerprint(args.threads)
    table = markdown(results, env, args.threads)
    print(table)
    for res in results:
        what = "trained in a fresh cache" if res["trained_in_fresh_cache"] else "loaded from the cache"
        print(
            f"{res['model']}: {what} in {res['load_s']:.1f} s ({res['load_cpu_s']:.1f} s CPU), {res['n_train']} "
            f"training / {res['n_eval']} eval examples"
        )
    wall = time.monotonic() - t0
    print(f"\nruns={args.runs} rounds={args.rounds} wall={wall:.0f}s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "results": results,
                "markdown": table,
                "env": env,
                "cpu_flags": list(cpu_flags()),
                "u8s8_saturates": u8s8_saturates(),
                "threads": args.threads,
                "bench": {"warmup": 20, "runs": args.runs, "rounds": args.rounds},
                "load_average_1m": {
                    "start": load_before,
                    "end": os.getloadavg()[0] if load_before is not None else None,
                },
                "wall_s": wall,
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
