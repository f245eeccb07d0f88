"""The latency harness: side-by-side rounds and the per-round ratios the benches report."""

import time

import numpy as np
import pytest

import workbench as wb
from workbench.benchmark import round_speedups, side_by_side


def _sleeper(ms: float):
    def run(_inputs):
        time.sleep(ms / 1e3)

    return run


def test_side_by_side_keeps_rounds_and_pools_samples():
    calls = {"slow": 0, "fast": 0}

    def counted(name, ms):
        inner = _sleeper(ms)

        def run(inputs):
            calls[name] += 1
            inner(inputs)

        return run

    timed = side_by_side({"slow": counted("slow", 6.0), "fast": counted("fast", 2.0)}, {}, runs=12, rounds=4, warmup=1)
    for name in ("slow", "fast"):
        r = timed[name]
        assert len(r.samples_ms) == 12 and len(r.extra["round_p50_ms"]) == 4
        # per round: 1 warm-up + 1 peak-memory call + 3 timed calls
        assert calls[name] == 4 * (1 + 1 + 3)
        assert r.p50 == pytest.approx(float(np.median(r.samples_ms)))
    ratios = round_speedups(timed, "slow", "fast")
    assert len(ratios) == 4
    # sleep(6 ms) vs sleep(2 ms): each round's ratio lands near 3 (sleep overshoots add a little to both)
    assert all(1.8 < x < 3.5 for x in ratios), ratios
    assert timed["slow"].p50 > 5.5 and timed["fast"].p50 < 5.0


def test_benchmark_rejects_bad_config():
    with pytest.raises(wb.ConfigError) as e:
        wb.BenchConfig(runs=0)
    assert "runs" in str(e.value)
