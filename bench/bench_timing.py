"""Can the workbench's own timings be trusted? Three measurements, in one run, on the CPU it names.

1. **Agreement with the side-by-side bench.** ``workbench optimize`` (its paired timing: the candidate and the FP32
   baseline in alternating rounds of 50 ms chunks) gives each recipe's speed-up (the median of the rounds' ratios,
   with its 95 % interval); the same artifacts are then timed by the benches' round-robin harness (``side_by_side``:
   200 calls and 3 s each at least, 10 rounds or more, 50 ms chunks; its speed-up by the same estimator, and from
   pooled p50s beside it). Target: within 10 % on a quiet machine.
2. **Repeatability.** The same candidate re-timed twice (``workbench remeasure``, its careful default: at least
   200 calls and 3 s per runner, 10 rounds or more): its p50s agree within 5 %? Beside it, the speed-ups of the two
   re-timings (and whether each lies inside the other's 95 % interval), the two re-timings' p50 at usual speed
   (the baseline's usual p50 over the paired speed-up, ``measure.benchmark.usual_p50``), and how far this machine's own speed moves: a fixed single-threaded matmul timed in 1-second windows
   (no model, no thread pool), then pinned to each core in turn (a VM's vCPUs can slow down on their own), and the
   workbench's reference kernel in 50 ms chunks (the speeds the machine switches between, how long it holds one,
   and how far its median over a few seconds moves by itself): the floor under any absolute repeatability here.
3. **Thread settings under a busy core.** ONNX Runtime with its worker threads spinning vs sleeping, and PyTorch's
   OpenMP with its default wait policy vs ``OMP_WAIT_POLICY=PASSIVE`` (a subprocess each: the policy is read when
   torch loads), quiet and with another program running a 1-thread matmul loop on one core.

Prints markdown tables; writes bench/results/timing.json. Not a test: run it by hand on a quiet machine
(about 10 minutes on 2 cores):

    .venv/bin/python bench/bench_timing.py                 # minilm + digits-cnn, 2 threads
    .venv/bin/python bench/bench_timing.py --models digits-cnn
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))

import workbench as wb  # noqa: E402
from workbench.core.artifact import onnx_artifact  # noqa: E402
from workbench.core.env import fingerprint  # noqa: E402
from workbench.measure.benchmark import (  # noqa: E402
    DEFAULT_CHUNK_S,
    paired_speedup,
    round_speedups,
    side_by_side,
    timing_rounds,
)
from workbench.measure.noise import (  # noqa: E402
    MAX_CALIBRATION_SLOWDOWN,
    MAX_P50_CI,
    TimingWatch,
    assess,
    kernel_readings,
)
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
        # at least 3 s per runner, as a re-timing: 20 calls a round of a 0.1 ms model time the switch between
        # runtimes (the other one's threads asleep, caches cold), not the model
        # read around it as the workbench reads around its own timings, so the reference can be judged noisy too
        with TimingWatch() as watch:
            timed = side_by_side(
                runners,
                model.bench_inputs(),
                runs=200,
                rounds=10,
                threads=threads,
                min_time_s=3.0,
                between_rounds=watch.probe,
                chunk_s=DEFAULT_CHUNK_S,
            )
        rows = []
        for c in rest:
            pooled = timed["baseline"].p50 / timed[c.recipe_name].p50
            per_round = round_speedups(timed, "baseline", c.recipe_name)
            # the workbench's own estimator (the median of the rounds' ratios), with its interval
            bench_paired = paired_speedup(per_round, pooled)
            bench_ratio = bench_paired["speedup"]
            bench_check = watch.check(threads, timed[c.recipe_name].samples_ms, per_round)
            # a re-timing's own default (careful_bench: RETIME_RUNS calls and RETIME_MIN_S seconds at least)
            again = [remeasure([c.id], store=store, model=model)[0].candidate for _ in range(2)]
            p50s = [x.get("p50_ms") for x in again]
            usual = [x.get("p50_usual_ms") for x in again]
            ups = [x.get("speedup") for x in again]
            cis = [x.get("speedup_ci") for x in again]
            rows.append(
                {
                    "model": name,
                    "recipe": c.recipe_name,
                    "optimize_speedup": c.get("speedup"),
                    "optimize_speedup_ci": c.get("speedup_ci"),
                    "optimize_rounds": len(c.get("speedup_rounds") or []),
                    "optimize_noisy": c.get("noisy"),
                    "bench_speedup": bench_ratio,
                    "bench_speedup_ci": bench_paired["speedup_ci"],
                    "bench_pooled_speedup": pooled,
                    "bench_round_speedups": per_round,
                    "bench_noisy": bench_check.noisy,
                    "bench_noise": list(bench_check.reasons),
                    "ratio_of_ratios": c.get("speedup") / bench_ratio,
                    "agrees_within_10pct": abs(c.get("speedup") / bench_ratio - 1) <= 0.10,
                    "retimed_p50_ms": p50s,
                    "retimed_noisy": [x.get("noisy") for x in again],
                    "retimed_noise": [x.get("noise") for x in again],
                    "retimed_calibration_slowdown": [
                        (x.get("noise_facts") or {}).get("calibration_slowdown") for x in again
                    ],
                    # the kernel's readings in time order (before, between the rounds, after): reference_rules
                    # judges them again against two kinds of quiet best
                    "retimed_readings": [kernel_readings(x.get("noise_facts")) for x in again],
                    "repeat_diff_pct": 100 * abs(p50s[0] - p50s[1]) / min(p50s),
                    "repeat_within_5pct": abs(p50s[0] - p50s[1]) / min(p50s) <= 0.05,
                    # the same two re-timings' p50 at usual speed (the baseline's usual p50 over the paired
                    # speed-up), and how many baseline timings each usual p50 was taken over
                    "retimed_p50_usual_ms": usual,
                    "usual_timings": [(x.get("usual_speed") or {}).get("timings") for x in again],
                    "usual_repeat_diff_pct": 100 * abs(usual[0] - usual[1]) / min(usual),
                    "usual_repeat_within_5pct": abs(usual[0] - usual[1]) / min(usual) <= 0.05,
                    # what they were taken from, oldest first (the second re-timing is the last, the first the one
                    # before it): each timing's rounds, so another estimator can be tried on the same readings
                    "usual_inputs": [
                        {"rounds": timing_rounds(t), "noisy": t["noisy"]} for t in store.baseline_timings(base.id)
                    ],
                    "retimed_speedups": ups,
                    "retimed_speedup_ci": cis,
                    "retimed_rounds": [len(x.get("speedup_rounds") or []) for x in again],
                    # each re-timing's speed-up inside the other's 95 % interval: do the intervals say how far a
                    # speed-up can move?
                    "speedup_repeat_inside_ci": [bool(ci and ci[0] <= u <= ci[1]) for ci, u in zip(cis, reversed(ups))],
                    "retimed_n_samples": [x.get("n_samples") for x in again],
                    "speedup_repeat_diff_pct": 100 * abs(ups[0] - ups[1]) / min(ups),
                }
            )
        return {"baseline_p50_ms": base.get("p50_ms"), "baseline_noisy": base.get("noisy"), "rows": rows}


def machine_drift(windows: int = 20, seconds: float = 1.0, cpu: int | None = None) -> dict:
    """Matmuls per second of one fixed single-threaded numpy kernel, in ``windows`` windows of ``seconds``: how far
    this machine's speed moves by itself (a subprocess, so one BLAS thread; the steal time read beside it).
    ``cpu``: pinned to that core (each vCPU of a VM can have slow phases of its own)."""
    code = (
        "import json, os, time, numpy as np\n"
        + (f"os.sched_setaffinity(0, {{{cpu}}})\n" if cpu is not None else "")
        + "def st():\n    v = list(map(int, open('/proc/stat').readline().split()[1:]))\n    return v[7], sum(v)\n"
        "a = np.random.default_rng(0).random((256, 256), dtype=np.float32)\nout = []\n"
        "w0 = time.perf_counter()\nwhile time.perf_counter() - w0 < 2:\n    a @ a\n"  # warm-up: first calls, clocks
        f"for _ in range({windows}):\n"
        "    s0, t0 = st(); w0 = time.perf_counter(); n = 0\n"
        f"    while time.perf_counter() - w0 < {seconds}:\n        a @ a; n += 1\n"
        "    s1, t1 = st(); out.append([n / (time.perf_counter() - w0), (s1 - s0) / max(1, t1 - t0)])\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout)
    rate = [r[0] for r in rows]
    consecutive = [abs(a - b) / min(a, b) * 100 for a, b in zip(rate, rate[1:])]
    return {
        "cpu": cpu,
        "windows_s": seconds,
        "matmuls_per_s": rate,
        "steal_fraction": [r[1] for r in rows],
        "range_pct": 100 * (max(rate) / min(rate) - 1),
        "median_consecutive_diff_pct": sorted(consecutive)[len(consecutive) // 2],
        "consecutive_within_5pct": sum(d <= 5 for d in consecutive),
        "pairs": len(consecutive),
    }


def speed_levels(seconds: float = 36.0, chunk_s: float = 0.05, windows_s: tuple[float, ...] = (3.0, 6.0, 12.0)) -> dict:
    """The workbench's own reference kernel (``calibration_ms``, one thread) called for ``seconds``, its times
    grouped into chunks of ``chunk_s``: at what speeds this machine runs from one tenth of a second to the next,
    and how far the median over a window of a few seconds moves by itself. The
    1-second windows of ``machine_drift`` average over these changes; a timing's chunks do not. ``windows_s``:
    the medians over windows of each length (a re-timing's runner spans about 6 s: longer ones would repeat
    better only if this spread shrinks with the length)."""
    code = (
        "import json, time, numpy as np\n"
        "from workbench.measure.noise import calibration_ms\n"
        "w0 = time.perf_counter()\nwhile time.perf_counter() - w0 < 2:\n    calibration_ms(1)\n"
        f"out = []\nend = time.perf_counter() + {seconds}\n"
        "while time.perf_counter() < end:\n"
        "    c0 = time.perf_counter(); s = []\n"
        f"    while time.perf_counter() - c0 < {chunk_s}:\n        s.append(calibration_ms(1))\n"
        "    out.append(float(np.median(s)))\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    chunks = json.loads(r.stdout.strip().splitlines()[-1])
    full = float(sorted(chunks)[len(chunks) // 20])  # the fastest 5 %: this machine at full speed
    at_full = [c <= MAX_CALIBRATION_SLOWDOWN * full for c in chunks]
    stretches, cur = [], 0
    for a, b in zip(at_full, at_full[1:] + [not at_full[-1]]):
        cur += 1
        if a != b:
            stretches.append(cur)
            cur = 0

    def window_medians(window_s: float) -> list[float]:
        per = max(1, round(window_s / chunk_s))
        return [float(np.median(chunks[i : i + per])) for i in range(0, len(chunks) - per + 1, per)]

    windows = {w: window_medians(w) for w in windows_s}
    return {
        "seconds": seconds,
        "chunk_s": chunk_s,
        "chunk_ms": chunks,
        "full_speed_ms": full,
        "share_at_full_speed": sum(at_full) / len(chunks),
        "slowest_vs_full": max(chunks) / full,
        "p50_vs_full": sorted(chunks)[len(chunks) // 2] / full,
        "longest_stretch_s": max(stretches) * chunk_s,
        "median_stretch_s": sorted(stretches)[len(stretches) // 2] * chunk_s,
        "windows": [
            {"window_s": w, "medians_ms": m, "spread_pct": 100 * (max(m) / min(m) - 1)} for w, m in windows.items()
        ],
    }


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


# the noise reasons that come from the kernel against its quiet best, and the thread advice that follows any reason
_KERNEL_REASONS = (
    r"the machine ran [\d.]+x slower than its quiet best on a reference kernel \(.*?\): something outside this "
    r"program slowed the whole machine \(on a VM, often another guest\); time it again later",
    r"the machine ran slow during part of the timing \(.*?\): its rounds mix two speeds of the machine; time it "
    r"again later",
    r"the timing used all \d+ cores, so its threads wait whenever anything else runs: fewer threads \(threads=\d+\) "
    r"time more repeatably on this machine",
)


def reference_rules(rows: list[dict]) -> dict:
    """The kernel's slowdown rules judged again on the same readings, in the order the re-timings ran, against two
    quiet bests: the fastest single reading so far (the workbench before 2026-12-02) and the lowest median of a
    timing's readings so far (now). A pair counts as flagged under a rule when either re-timing is, by that rule or
    by any reason that does not come from the kernel's best."""
    lowest_reading, lowest_median = float("inf"), float("inf")
    judged = {"fastest reading": [], "lowest timing median": []}
    for r in rows:
        for rule in judged.values():
            rule.append([])
        for reads, noise in zip(r["retimed_readings"], r["retimed_noise"]):
            other = noise or ""
            for pattern in _KERNEL_REASONS:
                other = re.sub(pattern, "", other)
            other = bool(other.replace(";", "").strip())
            if not reads:
                for rule in judged.values():
                    rule[-1].append(other)
                continue
            med = float(np.median(reads))
            lowest_reading, lowest_median = min(lowest_reading, *reads), min(lowest_median, med)
            for name, best in (("fastest reading", lowest_reading), ("lowest timing median", lowest_median)):
                # the workbench's own rules on these readings (one core: no thread advice); its other reasons are
                # in ``other`` already
                kernel = assess(
                    threads=1, cores=1, calibration=(reads[0], reads[-1]), during=reads[1:-1], best_ms=best
                ).noisy
                judged[name][-1].append(other or kernel)
    out = {}
    for name, flags in judged.items():
        far = [any(f) for f, r in zip(flags, rows) if not r["repeat_within_5pct"]]
        near = [any(f) for f, r in zip(flags, rows) if r["repeat_within_5pct"]]
        out[name] = {"far_pairs": len(far), "far_flagged": sum(far), "near_pairs": len(near), "near_flagged": sum(near)}
    return out


def p50_rule(rows: list[dict]) -> dict:
    """The re-timed pairs that the p50 rule (a p50 that did not hold still while timed) flagged, far and near."""
    flagged = [any("did not hold still" in (n or "") for n in r["retimed_noise"]) for r in rows]
    far = [f for f, r in zip(flagged, rows) if not r["repeat_within_5pct"]]
    near = [f for f, r in zip(flagged, rows) if r["repeat_within_5pct"]]
    return {"far_pairs": len(far), "far_flagged": sum(far), "near_pairs": len(near), "near_flagged": sum(near)}


def trusted_summary(rows: list[dict]) -> str:
    """The two targets over the timings the workbench itself trusted (not flagged noisy), and where the rest were."""
    agree = [r for r in rows if not r["optimize_noisy"] and not r.get("bench_noisy")]
    repeat = [r for r in rows if not any(r["retimed_noisy"])]
    far = [r for r in rows if not r["repeat_within_5pct"]]
    near = [r for r in rows if r["repeat_within_5pct"]]

    def span(vals: list[float]) -> str:
        return f"{min(vals):.1f}-{max(vals):.1f} %" if vals else "-"

    return (
        f"\nTrusted (no noise flag on either side): {sum(r['agrees_within_10pct'] for r in agree)} of {len(agree)} "
        f"paired speed-ups within 10 % of the bench ({span([100 * abs(r['ratio_of_ratios'] - 1) for r in agree])}); "
        f"{sum(r['repeat_within_5pct'] for r in repeat)} of {len(repeat)} re-timed pairs within 5 % p50 "
        f"({span([r['repeat_diff_pct'] for r in repeat])}). Of the {len(far)} pairs more than 5 % apart, "
        f"{sum(any(r['retimed_noisy']) for r in far)} carried a noise flag; of the {len(near)} within 5 %, "
        f"{sum(any(r['retimed_noisy']) for r in near)} carried one anyway."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["minilm", "digits-cnn"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-eval", type=int, default=100)
    ap.add_argument("--out", default=str(HERE / "results" / "timing.json"))
    args = ap.parse_args()
    fp = fingerprint(args.threads)
    print(f"CPU: {fp['cpu']} ({fp['cores']} cores; ISA {' '.join(fp['isa'])}); {args.threads} threads")
    result = {
        "env": fp,
        "threads": args.threads,
        "machine_drift": machine_drift(),
        "core_drift": [machine_drift(windows=10, cpu=c) for c in sorted(os.sched_getaffinity(0))],
        "speed_levels": speed_levels(),
        "agreement": [],
        "ort_spinning": [],
        "omp_policy": [],
    }
    for name in args.models:
        a = agreement(name, args.threads, args.n_eval)
        result["agreement"] += a["rows"]
        result["ort_spinning"] += ort_spinning(name, args.threads)
        result["omp_policy"] += omp_policy(name, args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))

    d = result["machine_drift"]
    print(
        f"\nThis machine's own speed (1-thread matmul, {d['pairs'] + 1} windows of {d['windows_s']:g} s): range "
        f"{d['range_pct']:.1f} %, median change between consecutive windows {d['median_consecutive_diff_pct']:.1f} %, "
        f"{d['consecutive_within_5pct']} of {d['pairs']} consecutive pairs within 5 %; steal up to "
        f"{100 * max(d['steal_fraction']):.1f} %."
    )
    for d in result["core_drift"]:
        print(
            f"  pinned to core {d['cpu']} ({d['pairs'] + 1} windows of {d['windows_s']:g} s): range {d['range_pct']:.1f} %, "
            f"{min(d['matmuls_per_s']):.0f}-{max(d['matmuls_per_s']):.0f} matmuls/s"
        )
    v = result["speed_levels"]
    print(
        f"  the reference kernel in {v['chunk_s'] * 1e3:.0f} ms chunks ({v['seconds']:g} s): "
        f"{100 * v['share_at_full_speed']:.0f} % of chunks at full speed (within {MAX_CALIBRATION_SLOWDOWN:g}x of the "
        f"fastest 5 %), median chunk {v['p50_vs_full']:.2f}x, slowest {v['slowest_vs_full']:.2f}x; a speed held "
        f"{v['median_stretch_s']:.2f} s (median) to {v['longest_stretch_s']:.2f} s; its median over windows of "
        + "; ".join(
            f"{w['window_s']:g} s spread {w['spread_pct']:.1f} % ({len(w['medians_ms'])})" for w in v["windows"]
        )
    )

    def ci(v) -> str:
        return f" [{v[0]:.2f}, {v[1]:.2f}]" if v else ""

    print(
        "\n| model | recipe | optimize speed-up (paired, rounds) | bench speed-up (side by side; pooled p50s) | ratio "
        "| re-timed p50 twice (ms) | p50 repeat diff | at usual speed (ms; baseline timings) | its repeat diff "
        "| re-timed speed-ups [95 % CI] | speed-up repeat diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in result["agreement"]:
        print(
            f"| {r['model']} | {r['recipe']} | {r['optimize_speedup']:.2f}x{ci(r['optimize_speedup_ci'])} "
            f"({r['optimize_rounds']}){' (noisy)' if r['optimize_noisy'] else ''} "
            f"| {r['bench_speedup']:.2f}x{ci(r['bench_speedup_ci'])}; {r['bench_pooled_speedup']:.2f}x "
            f"| {r['ratio_of_ratios']:.3f} | {r['retimed_p50_ms'][0]:.3g}, {r['retimed_p50_ms'][1]:.3g} "
            f"| {r['repeat_diff_pct']:.1f} % | {r['retimed_p50_usual_ms'][0]:.3g}, {r['retimed_p50_usual_ms'][1]:.3g} "
            f"({r['usual_timings'][0]}, {r['usual_timings'][1]}) | {r['usual_repeat_diff_pct']:.1f} % "
            f"| {r['retimed_speedups'][0]:.2f}x{ci(r['retimed_speedup_ci'][0])}, "
            f"{r['retimed_speedups'][1]:.2f}x{ci(r['retimed_speedup_ci'][1])} ({r['retimed_rounds'][0]}, "
            f"{r['retimed_rounds'][1]} rounds) | {r['speedup_repeat_diff_pct']:.1f} % |"
        )
    rows = result["agreement"]
    inside = [x for r in rows for x in r["speedup_repeat_inside_ci"]]
    print(
        f"\nSpeed-ups: {sum(r['agrees_within_10pct'] for r in rows)} of {len(rows)} from optimize within 10 % of the "
        f"bench; re-timed twice, {sum(r['speedup_repeat_diff_pct'] <= 5 for r in rows)} of {len(rows)} within 5 % of "
        f"each other ({min(r['speedup_repeat_diff_pct'] for r in rows):.1f}-"
        f"{max(r['speedup_repeat_diff_pct'] for r in rows):.1f} %); {sum(inside)} of {len(inside)} re-timed speed-ups "
        f"inside the other re-timing's 95 % interval."
    )
    print(
        f"P50s: re-timed twice, {sum(r['repeat_within_5pct'] for r in rows)} of {len(rows)} within 5 % of each other "
        f"({min(r['repeat_diff_pct'] for r in rows):.1f}-{max(r['repeat_diff_pct'] for r in rows):.1f} %); at usual "
        f"speed, {sum(r['usual_repeat_within_5pct'] for r in rows)} of {len(rows)} "
        f"({min(r['usual_repeat_diff_pct'] for r in rows):.1f}-{max(r['usual_repeat_diff_pct'] for r in rows):.1f} %)."
    )
    print(trusted_summary(result["agreement"]))
    held = p50_rule(result["agreement"])
    result["p50_rule"] = held
    print(
        f"  by the p50 rule alone (its stretches' 95 % interval over {MAX_P50_CI:g}x): {held['far_flagged']} of "
        f"{held['far_pairs']} pairs more than 5 % apart flagged, {held['near_flagged']} of {held['near_pairs']} within 5 %"
    )
    result["reference_rules"] = reference_rules(result["agreement"])
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    for name, c in result["reference_rules"].items():
        print(
            f"  the kernel judged against the {name} so far: {c['far_flagged']} of {c['far_pairs']} pairs more than "
            f"5 % apart flagged, {c['near_flagged']} of {c['near_pairs']} within 5 %"
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
