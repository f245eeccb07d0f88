"""Can the workbench's own timings be trusted? Three measurements, in one run, on the CPU it names.

1. **Agreement with the side-by-side bench.** ``workbench optimize`` (its paired timing: the candidate and the FP32
   baseline in alternating rounds) gives each recipe's speed-up; the same artifacts are then timed by the benches'
   round-robin harness (``side_by_side``: 200 calls each, 10 rounds). Target: within 10 % on a quiet machine.
2. **Repeatability.** The same candidate re-timed twice (``workbench remeasure``): its p50s agree within 5 %.
3. **Thread settings under a busy core.** ONNX Runtime with its worker threads spinning vs sleeping, and PyTorch's
   OpenMP with its default wait policy vs ``OMP_WAIT_POLICY=PASSIVE`` (a subprocess each: the policy is read when
   torch loads), quiet and with another program running a 1-thread matmul loop on one core.

Prints markdown tables; writes bench/results/timing.json. Not a test: run it by hand on a quiet machine
(about 5 minutes on 2 cores):

    .venv/bin/python bench/bench_timing.py                 # minilm + digits-cnn, 2 threads
    .venv/bin/python bench/bench_timing.py --models digits-cnn
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))

import workbench as wb  # noqa: E402
from workbench.core.artifact import onnx_artifact  # noqa: E402
from workbench.core.env import fingerprint  # noqa: E402
from workbench.measure.benchmark import round_speedups, side_by_side  # noqa: E402
from workbench.remeasure import remeasure  # noqa: E402

RECIPES = {"minilm": ("ort-fp32", "ort-int8-dynamic"), "digits-cnn": ("ort-fp32", "ort-int8-dynamic")}

_NEIGHBOUR = (
    "import numpy as np, time\na = np.random.rand(300, 300)\nt = time.time()\nwhile time.time() - t < {s}:\n    a @ a\n"
)

_EAGER = r"""
import json, sys, os
import workbench as wb
from workbench.measure.benchmark import side_by_side
m = wb.load_model(sys.argv[1], n_eval=8)
t = side_by_side({"eager": m.baseline.runner(int(sys.argv[2]))}, m.bench_inputs(), runs=100, rounds=5, warmup=5,
                 threads=int(sys.argv[2]))["eager"]
print(json.dumps({"p50_ms": t.p50, "p90_ms": t.p90}))
"""


def neighbour(seconds: float) -> subprocess.Popen:
    """Another program keeping one core busy (numpy matmuls on one BLAS thread)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _NEIGHBOUR.format(s=seconds)], env=env)


def agreement(name: str, threads: int, n_eval: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        store = wb.RunStore(Path(d) / "runs.sqlite")
        model = wb.load_model(name, n_eval=n_eval)
        bench = wb.BenchConfig(threads=threads)
        cands = wb.optimize(model, list(RECIPES[name]), store=store, bench=bench)
        base, rest = cands[0], cands[1:]
        runners = {"baseline": model.baseline.runner(threads, session_config=bench.session_config())}
        for c in rest:
            runners[c.recipe_name] = onnx_artifact(Path(c.artifact_path)).runner(
                threads, session_config=bench.session_config()
            )
        timed = side_by_side(runners, model.bench_inputs(), runs=200, rounds=10, threads=threads)
        rows = []
        for c in rest:
            bench_ratio = timed["baseline"].p50 / timed[c.recipe_name].p50
            per_round = round_speedups(timed, "baseline", c.recipe_name)
            # a re-timing's own default: RETIME_RUNS calls each
            again = [remeasure([c.id], store=store, model=model)[0].candidate for _ in range(2)]
            p50s = [x.get("p50_ms") for x in again]
            rows.append(
                {
                    "model": name,
                    "recipe": c.recipe_name,
                    "optimize_speedup": c.get("speedup"),
                    "optimize_noisy": c.get("noisy"),
                    "bench_speedup": bench_ratio,
                    "bench_round_speedups": per_round,
                    "ratio_of_ratios": c.get("speedup") / bench_ratio,
                    "agrees_within_10pct": abs(c.get("speedup") / bench_ratio - 1) <= 0.10,
                    "retimed_p50_ms": p50s,
                    "retimed_noisy": [x.get("noisy") for x in again],
                    "repeat_diff_pct": 100 * abs(p50s[0] - p50s[1]) / min(p50s),
                    "repeat_within_5pct": abs(p50s[0] - p50s[1]) / min(p50s) <= 0.05,
                }
            )
        return {"baseline_p50_ms": base.get("p50_ms"), "baseline_noisy": base.get("noisy"), "rows": rows}


def ort_spinning(name: str, threads: int) -> list[dict]:
    """ONNX Runtime INT8 beside PyTorch eager, spinning on and off, quiet and with a busy neighbour."""
    with tempfile.TemporaryDirectory() as d:
        model = wb.load_model(name, n_eval=8)
        c = wb.optimize(model, ["ort-int8-dynamic"], store=Path(d) / "r.sqlite", bench=wb.BenchConfig(threads=threads))[
            1
        ]
        out = []
        for busy in (False, True):
            p = neighbour(600) if busy else None
            try:
                for spin in (True, False):
                    cfg = {"session.intra_op.allow_spinning": "1" if spin else "0"}
                    runners = {
                        "eager": model.baseline.runner(threads),
                        "int8": onnx_artifact(Path(c.artifact_path)).runner(threads, session_config=cfg),
                    }
                    t = side_by_side(runners, model.bench_inputs(), runs=100, rounds=5, threads=threads)
                    out.append(
                        {
                            "model": name,
                            "neighbour": busy,
                            "ort_spinning": spin,
                            "eager_p50_ms": t["eager"].p50,
                            "eager_p90_ms": t["eager"].p90,
                            "int8_p50_ms": t["int8"].p50,
                            "int8_p90_ms": t["int8"].p90,
                            "speedup": t["eager"].p50 / t["int8"].p50,
                        }
                    )
            finally:
                if p is not None:
                    p.kill()
                    p.wait()
        return out


def omp_policy(name: str, threads: int) -> list[dict]:
    out = []
    for busy in (False, True):
        p = neighbour(600) if busy else None
        try:
            for policy in (None, "PASSIVE"):
                env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                if policy:
                    env["OMP_WAIT_POLICY"] = policy
                r = subprocess.run(
                    [sys.executable, "-c", _EAGER, name, str(threads)], env=env, capture_output=True, text=True
                )
                res = json.loads(r.stdout.strip().splitlines()[-1])
                out.append({"model": name, "neighbour": busy, "omp_wait_policy": policy or "default", **res})
        finally:
            if p is not None:
                p.kill()
                p.wait()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["minilm", "digits-cnn"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-eval", type=int, default=100)
    ap.add_argument("--out", default=str(HERE / "results" / "timing.json"))
    args = ap.parse_args()
    fp = fingerprint(args.threads)
    print(f"CPU: {fp['cpu']} ({fp['cores']} cores; ISA {' '.join(fp['isa'])}); {args.threads} threads")
    result = {"env": fp, "agreement": [], "ort_spinning": [], "omp_policy": []}
    for name in args.models:
        a = agreement(name, args.threads, args.n_eval)
        result["agreement"] += a["rows"]
        result["ort_spinning"] += ort_spinning(name, args.threads)
        result["omp_policy"] += omp_policy(name, args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))

    print(
        "\n| model | recipe | optimize speed-up (paired) | bench speed-up (side by side) | ratio | re-timed p50 twice (ms) | repeat diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in result["agreement"]:
        print(
            f"| {r['model']} | {r['recipe']} | {r['optimize_speedup']:.2f}x{' (noisy)' if r['optimize_noisy'] else ''} "
            f"| {r['bench_speedup']:.2f}x (rounds {min(r['bench_round_speedups']):.2f}-{max(r['bench_round_speedups']):.2f}) "
            f"| {r['ratio_of_ratios']:.3f} | {r['retimed_p50_ms'][0]:.3g}, {r['retimed_p50_ms'][1]:.3g} "
            f"| {r['repeat_diff_pct']:.1f} % |"
        )
    print("\n| model | neighbour on one core | ORT spinning | eager p50 / p90 ms | INT8 p50 / p90 ms | speed-up |")
    print("|---|---|---|---|---|---|")
    for r in result["ort_spinning"]:
        print(
            f"| {r['model']} | {'yes' if r['neighbour'] else 'no'} | {'on' if r['ort_spinning'] else 'off'} "
            f"| {r['eager_p50_ms']:.3g} / {r['eager_p90_ms']:.3g} | {r['int8_p50_ms']:.3g} / {r['int8_p90_ms']:.3g} "
            f"| {r['speedup']:.2f}x |"
        )
    print("\n| model | neighbour on one core | OMP_WAIT_POLICY | eager p50 ms | eager p90 ms |")
    print("|---|---|---|---|---|")
    for r in result["omp_policy"]:
        print(
            f"| {r['model']} | {'yes' if r['neighbour'] else 'no'} | {r['omp_wait_policy']} | {r['p50_ms']:.3g} "
            f"| {r['p90_ms']:.3g} |"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
