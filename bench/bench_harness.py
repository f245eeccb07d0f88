"""The latency harness on the real clock: do side-by-side rounds recover a known ratio on this machine?

Two runners that sleep a fixed time per call (6 ms and 2 ms: a true ratio of 3) are timed the way the
benches time models (`side_by_side`, then `round_speedups`). Sleeps overshoot by the scheduler's
wake-up latency, which adds about the same to both, so each round's ratio lands a little under 3.
Target: every round's ratio within 1.8-3.5, the slow runner's pooled p50 above 5.5 ms and the fast
one's under 5 ms. The unit tests (tests/test_benchmark.py) check the harness with a fake clock; this is
the one place its timing meets the real one.

    .venv/bin/python bench/bench_harness.py      # prints the rounds, writes bench/results/harness.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))

from workbench.measure.benchmark import format_ratio_summary, ratio_summary, round_speedups, side_by_side  # noqa: E402

SLOW_MS, FAST_MS = 6.0, 2.0
RATIO_RANGE = (1.8, 3.5)


def _sleeper(ms: float):
    def run(_inputs) -> None:
        time.sleep(ms / 1e3)

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()

    timed = side_by_side(
        {"slow": _sleeper(SLOW_MS), "fast": _sleeper(FAST_MS)},
        {},
        runs=args.runs,
        rounds=args.rounds,
        warmup=args.warmup,
    )
    ratios = round_speedups(timed, "slow", "fast")
    summary = ratio_summary(ratios, RATIO_RANGE[0])
    slow, fast = timed["slow"], timed["fast"]
    lo, hi = RATIO_RANGE
    ok_rounds = all(lo < r < hi for r in ratios)
    ok_p50 = slow.p50 > 5.5 and fast.p50 < 5.0
    print(f"sleep({SLOW_MS:g} ms) against sleep({FAST_MS:g} ms), {args.rounds} rounds of {args.runs // args.rounds}")
    for i, (a, b, r) in enumerate(zip(slow.extra["round_p50_ms"], fast.extra["round_p50_ms"], ratios)):
        print(f"  round {i + 1:>2}: {a:6.2f} ms / {b:6.2f} ms = {r:.2f}x")
    print(f"per-round ratios: {format_ratio_summary(summary)}")
    print(f"every round within {lo:g}-{hi:g}x: {'met' if ok_rounds else 'MISSED'}")
    print(f"pooled p50: slow {slow.p50:.2f} ms (> 5.5), fast {fast.p50:.2f} ms (< 5): {'met' if ok_p50 else 'MISSED'}")
    out = {
        "slow_ms": SLOW_MS,
        "fast_ms": FAST_MS,
        "runs": args.runs,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "round_ratios": ratios,
        "summary": summary,
        "p50_ms": {"slow": slow.p50, "fast": fast.p50},
        "load_average_1m_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "targets": {"every_round_in_range": ok_rounds, "pooled_p50s": ok_p50},
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "harness.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {HERE / 'results' / 'harness.json'}")
    return 0 if ok_rounds and ok_p50 else 1


if __name__ == "__main__":
    sys.exit(main())
