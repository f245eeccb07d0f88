"""The latency harness: side-by-side rounds and the per-round ratios the benches report.

No test here reads the real clock: the harness is timed through a fake ``perf_counter`` that only the
runners move, by a fixed cost per call, so every sample, p50 and ratio is known exactly. The timing
itself (real sleeps measured side by side) is bench/bench_harness.py.
"""

from __future__ import annotations

import importlib
import time
import types

import numpy as np
import pytest

import workbench as wb
from workbench.measure.benchmark import (
    LatencyResult,
    format_ratio_summary,
    ratio_summary,
    round_speedups,
    side_by_side,
)

# the module itself: ``workbench.benchmark`` as an attribute is the function wb.benchmark
HARNESS = importlib.import_module("workbench.measure.benchmark")


class FakeClock:
    """The harness's ``perf_counter``: it moves only when a runner spends its fixed cost."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def spend(self, ms: float) -> None:
        self.now += ms / 1e3


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(HARNESS, "time", types.SimpleNamespace(perf_counter=c.perf_counter, sleep=time.sleep))
    return c


def test_benchmark_times_only_the_timed_calls_and_reports_progress(clock):
    calls = []

    def run(inputs):
        calls.append(inputs["x"])
        clock.spend(1000.0 if len(calls) <= 11 else 4.0)  # 10 warm-ups + the peak-memory call: never timed

    ctx = wb.RunContext()
    r = wb.benchmark(run, {"x": 1}, wb.BenchConfig(warmup=10, runs=20, threads=1), ctx=ctx, stage="bench")
    assert len(calls) == 10 + 1 + 20 and set(calls) == {1}
    assert r.samples_ms == pytest.approx((4.0,) * 20)
    assert r.p50 == pytest.approx(4.0) and r.cv == pytest.approx(0.0, abs=1e-9) and r.threads == 1
    # progress: begun with warm-up + runs to do, then one step per 10 calls
    assert [(e.stage, e.done, e.total) for e in ctx.events] == [("bench", d, 30) for d in (0, 10, 20, 30)]


def test_side_by_side_keeps_rounds_and_pools_samples(clock):
    order: list[str] = []
    setup = 1 + 1  # per runner, once: 1 warm-up, 1 peak-memory call
    per_chunk = 1 + 3  # per round and runner: 1 warm-up, 12 // 4 timed calls
    # each round costs the slow runner more (6, 12, 18, 24 ms) and the fast one always 2 ms; the untimed
    # calls cost 1 s, so a warm-up or peak call counted as a sample would show
    cost = {"slow": lambda rnd: 6.0 * (rnd + 1), "fast": lambda rnd: 2.0}

    def runner(name):
        def run(_inputs):
            i = order.count(name)
            order.append(name)
            untimed = i < setup or (i - setup) % per_chunk == 0
            clock.spend(1000.0 if untimed else cost[name]((i - setup) // per_chunk))

        return run

    timed = side_by_side({"slow": runner("slow"), "fast": runner("fast")}, {}, runs=12, rounds=4, warmup=1, threads=2)
    assert list(timed) == ["slow", "fast"]
    # round by round, each runner in turn gets its whole chunk: rounds are not interleaved call by call
    assert order == ["slow"] * setup + ["fast"] * setup + (["slow"] * per_chunk + ["fast"] * per_chunk) * 4
    slow, fast = timed["slow"], timed["fast"]
    assert slow.samples_ms == pytest.approx([6.0] * 3 + [12.0] * 3 + [18.0] * 3 + [24.0] * 3)
    assert fast.samples_ms == pytest.approx([2.0] * 12)
    assert slow.extra["round_p50_ms"] == pytest.approx([6.0, 12.0, 18.0, 24.0])
    assert fast.extra["round_p50_ms"] == pytest.approx([2.0] * 4)
    assert slow.p50 == pytest.approx(float(np.median(slow.samples_ms))) and slow.p50 == pytest.approx(15.0)
    assert slow.threads == fast.threads == 2
    # per round, the baseline's p50 over the other's, in round order
    assert round_speedups(timed, "slow", "fast") == pytest.approx([3.0, 6.0, 9.0, 12.0])
    assert round_speedups(timed, "fast", "slow") == pytest.approx([1 / 3, 1 / 6, 1 / 9, 1 / 12])


def test_rounds_follow_the_clock_so_chunks_stay_short(clock):
    """A shared host changes speed every few tenths of a second: with ``chunk_s`` a timing gets rounds until no
    runner's chunk is longer than that, and each round's warm-up is cut to half a chunk."""
    calls = {"a": 0, "b": 0}
    probes = []

    def runner(name, ms):
        def run(_inputs):
            calls[name] += 1
            clock.spend(ms)

        return run

    # 10 ms and 1 ms calls, 40 calls at least, 0.4 s of timed calls each: a 10 ms runner fills 0.4 s in 40 calls,
    # 50 ms chunks need 8 rounds (5 calls each); the 1 ms runner gets 400 calls, 50 a round
    timed = side_by_side(
        {"a": runner("a", 10.0), "b": runner("b", 1.0)},
        {},
        runs=40,
        rounds=2,
        warmup=5,
        min_time_s=0.4,
        chunk_s=0.05,
        between_rounds=lambda: probes.append(1),
    )
    assert len(timed["a"].extra["round_p50_ms"]) == len(timed["b"].extra["round_p50_ms"]) == 8
    assert len(timed["a"].samples_ms) == 40 and len(timed["b"].samples_ms) == 400
    # warm-ups: 5 before, then per round at most half a chunk (2 calls of 10 ms; 5 of 1 ms), plus the peak-memory
    # call and the calls that measured each runner's speed (1 for a: 40 x 10 ms already fill 0.4 s; 3 for b)
    assert calls["a"] == 5 + 1 + 1 + 8 * 2 + 40
    assert calls["b"] == 5 + 1 + 3 + 8 * 5 + 400
    assert len(probes) == 2  # read as often as the rounds asked for, not in every one of the 8
    # without chunk_s: exactly the rounds asked for
    plain = side_by_side({"a": runner("a", 10.0)}, {}, runs=40, rounds=2, warmup=1, min_time_s=0.4)
    assert len(plain["a"].extra["round_p50_ms"]) == 2 and len(plain["a"].samples_ms) == 40


def test_a_paired_speedup_is_the_median_of_its_rounds_with_an_interval():
    from workbench.measure.benchmark import Timing, paired_speedup
    from workbench.measure.evaluate import median_interval

    # order statistics: 10 values, 95 %: the 2nd smallest and the 2nd largest; 5 values are too few
    assert median_interval([5, 1, 9, 3, 7, 2, 8, 4, 10, 6]) == (2.0, 9.0)
    assert median_interval(range(1, 61)) == (22.0, 39.0)
    assert median_interval([1, 2, 3, 4, 5]) is None
    # one round that a slow phase hit (5.0x) moves one order statistic, not the speed-up
    ratios = [2.0, 2.1, 1.9, 2.05, 5.0, 1.95, 2.02, 1.98]
    s = paired_speedup(ratios, pooled=2.6)
    assert s["speedup"] == pytest.approx(2.01) and s["speedup_ci"] == pytest.approx([1.9, 5.0])
    # fewer than 3 rounds: the pooled ratio, without an interval
    assert paired_speedup([2.0, 3.0], pooled=2.4) == {"speedup": 2.4, "speedup_ci": None}
    base = _rounds(20.0, 21.0, 40.0, 22.0, 20.0, 21.0)
    cand = _rounds(10.0, 10.0, 10.0, 11.0, 10.0, 10.5)
    t = Timing(cand, base)
    assert t.round_speedups == pytest.approx([2.0, 2.1, 4.0, 2.0, 2.0, 2.0])
    assert t.speedup == pytest.approx(2.0) and t.paired()["speedup_ci"] == pytest.approx([2.0, 4.0])
    assert Timing(cand).paired() == {} and Timing(cand).speedup is None


def _rounds(*p50s: float) -> LatencyResult:
    return LatencyResult(tuple(p50s), threads=1, extra={"round_p50_ms": list(p50s)})


def test_round_speedups_and_summary_from_fixed_samples():
    timed = {"eager": _rounds(9.0, 12.0, 8.0, 10.0, 6.0), "int8": _rounds(3.0, 3.0, 4.0, 2.0, 3.0)}
    ratios = round_speedups(timed, "eager", "int8")
    assert ratios == pytest.approx([3.0, 4.0, 2.0, 5.0, 2.0])
    s = ratio_summary(ratios, target=3.0)
    assert s == {"median": 3.0, "min": 2.0, "max": 5.0, "rounds": 5, "rounds_at_target": 3, "target": 3.0}
    assert format_ratio_summary(s) == "median 3.00x, range 2.00-5.00x, 3 of 5 rounds >= 3x"
    empty = ratio_summary([], target=2.0)
    assert (empty["rounds"], empty["median"], empty["rounds_at_target"]) == (0, None, 0)
    assert format_ratio_summary(empty) == "no rounds"


def test_benchmark_rejects_bad_config():
    with pytest.raises(wb.ConfigError) as e:
        wb.BenchConfig(runs=0)
    assert "runs" in str(e.value)
    with pytest.raises(wb.ConfigError) as e:
        wb.BenchConfig(chunk_s=0)
    assert "chunk_s" in str(e.value)


def test_more_threads_than_cores_is_refused():
    """999 threads on a 2-core machine once recorded a '599.79x' speed-up: the timings measured waiting."""
    import os

    cores = os.cpu_count() or 1
    with pytest.raises(wb.ConfigError) as e:
        wb.BenchConfig(threads=cores + 1)
    assert f"{cores} CPU cores" in str(e.value)
    assert wb.BenchConfig(threads=cores).threads == cores
