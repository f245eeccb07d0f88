"""One latency/memory harness for PyTorch and ONNX Runtime candidates.

Warm-up runs first (allocator, kernel selection, lazy init), then ``runs`` timed calls; every raw
sample is kept so percentiles and spread can be recomputed later. Peak memory is the resident-set
high-water mark reached while the model runs, measured against the RSS just before (Linux resets
the high-water mark through /proc/self/clear_refs; elsewhere a sampling thread estimates it).
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.config import check_range
from ..core.context import RunContext
from ..core.errors import ConfigError
from .evaluate import median_interval
from .noise import NoiseCheck, TimingWatch, settle, settle_seconds, stretch_medians, timing_retries

__all__ = [
    "BenchConfig",
    "LatencyResult",
    "benchmark",
    "side_by_side",
    "Timing",
    "measure_latency",
    "round_speedups",
    "paired_speedup",
    "usual_p50",
    "middle_half_mean",
    "timing_rounds",
    "recorded_rounds",
    "USUAL_TIMINGS",
    "ratio_summary",
    "format_ratio_summary",
    "measure_peak_rss",
    "onnx_inference_memory",
]


#: the most rounds a paired timing is cut into to keep its chunks short (:func:`side_by_side`'s ``chunk_s``)
MAX_ROUNDS = 400
#: a paired timing's rounds follow the clock: each runner's chunk of timed calls lasts at most this long
DEFAULT_CHUNK_S = 0.05


@dataclass(frozen=True)
class BenchConfig:
    #: 10 warm-ups cover ORT's first-run allocations and torch's lazy kernel choice
    warmup: int = 10
    #: 50 samples give a stable p50 and a rough p90/p99 in about a second for a 20 ms model
    runs: int = 50
    #: None = all cores. Fewer threads emulate a smaller device (a 2-core SBC, a phone's big cores)
    threads: int | None = None
    #: time a candidate in alternating rounds with its baseline, so the speed-up is taken under one machine state
    paired: bool = True
    #: rounds of a paired timing at least (each runner gets its share of the timed calls in every round)
    rounds: int = 5
    #: a paired timing gets more rounds until each runner's chunk of timed calls in a round lasts at most this long
    #: (a shared host changes speed every few tenths of a second: :func:`side_by_side`); None: exactly ``rounds``
    chunk_s: float | None = DEFAULT_CHUNK_S
    #: seconds of timed calls each runner gets at least (more calls than ``runs`` for a fast model: 50 calls of a
    #: 0.1 ms model are 5 ms of the machine's life, and its p50 then moved by 40 % between two re-timings);
    #: None: $WORKBENCH_MIN_TIME_S, else 0.5 s. Calls stop at about MAX_CALLS per runner
    min_time_s: float | None = None
    #: seconds to wait at most for a quiet machine before timing; None: $WORKBENCH_SETTLE_S, else 20
    settle_s: float | None = None
    #: re-measurements of a timing found noisy (after another bounded wait); None: $WORKBENCH_TIMING_RETRIES, else 1
    retries: int | None = None
    #: ONNX Runtime's worker threads spin-wait between calls when True. Off by default: a spinning pool takes the
    #: cores from whatever runs next (the interleaved baseline, another program) - measured in bench_timing.py
    spinning: bool = False

    def __post_init__(self) -> None:
        check_range("BenchConfig", "warmup", self.warmup, 0, 10_000, integer=True)
        check_range("BenchConfig", "runs", self.runs, 1, 100_000, integer=True)
        check_range("BenchConfig", "rounds", self.rounds, 1, 1000, integer=True)
        if self.chunk_s is not None:
            check_range("BenchConfig", "chunk_s", self.chunk_s, 0.001, 60)
        if self.retries is not None:
            check_range("BenchConfig", "retries", self.retries, 0, 10, integer=True)
        if self.settle_s is not None:
            check_range("BenchConfig", "settle_s", self.settle_s, 0, 3600)
        if self.min_time_s is not None:
            check_range("BenchConfig", "min_time_s", self.min_time_s, 0, 600)
        if self.threads is not None:
            check_range("BenchConfig", "threads", self.threads, 1, 1024, integer=True)
            cores = os.cpu_count() or 1
            if self.threads > cores:
                raise ConfigError(
                    f"The 'threads' parameter of BenchConfig is {self.threads}, more than the {cores} CPU cores of "
                    f"this machine: the timings would measure threads waiting for a core, not the model. Use 1 to "
                    f"{cores} (fewer threads emulate a smaller device)."
                )

    @property
    def effective_threads(self) -> int:
        return self.threads or (os.cpu_count() or 1)

    @property
    def effective_min_time_s(self) -> float:
        return min_time_seconds() if self.min_time_s is None else self.min_time_s

    def session_config(self) -> dict[str, str]:
        """ONNX Runtime session entries for a timed session (recorded with the candidate as ``thread_settings``)."""
        return {"session.intra_op.allow_spinning": "1" if self.spinning else "0"}

    def thread_settings(self) -> dict[str, Any]:
        """The thread settings a timing ran under, as a candidate records them."""
        return {
            "threads": self.effective_threads,
            "ort_spinning": self.spinning,
            "ort_inter_op_threads": 1,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY") or "default (spin, then sleep)",
        }


@dataclass(frozen=True)
class LatencyResult:
    samples_ms: tuple[float, ...]
    threads: int
    peak_mem_bytes: int | None = None
    extra: dict = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples_ms, q))

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p90(self) -> float:
        return self.percentile(90)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def mean(self) -> float:
        return float(statistics.fmean(self.samples_ms))

    @property
    def cv(self) -> float:
        """Coefficient of variation: above ~0.1 the machine was busy; compare with care."""
        return float(np.std(self.samples_ms) / max(self.mean, 1e-12))

    def summary(self) -> dict:
        return {
            "p50_ms": self.p50,
            "p90_ms": self.p90,
            "p99_ms": self.p99,
            "mean_ms": self.mean,
            "cv": self.cv,
            "threads": self.threads,
            "peak_mem_bytes": self.peak_mem_bytes,
            "n_samples": len(self.samples_ms),
            "samples_ms": stored_samples(self.samples_ms),
        }


#: the most timed calls one runner gets in one timing (one round of a paired one), however fast it is
MAX_CALLS = 20_000
#: the most samples a record keeps (evenly spaced in time order; the percentiles come from all of them)
STORED_SAMPLES = 2_000
DEFAULT_MIN_TIME_S = 0.5


def min_time_seconds(default: float = DEFAULT_MIN_TIME_S) -> float:
    """Seconds of timed calls per runner: ``$WORKBENCH_MIN_TIME_S`` or ``default`` (0: exactly ``runs`` calls)."""
    raw = os.environ.get("WORKBENCH_MIN_TIME_S")
    try:
        return max(0.0, min(600.0, float(raw))) if raw and raw.strip() else default
    except ValueError:
        return default


def stored_samples(samples: Sequence[float], keep: int = STORED_SAMPLES) -> list[float]:
    """At most ``keep`` of ``samples``, evenly spaced in time order (all of them when there are fewer)."""
    if len(samples) <= keep:
        return list(samples)
    idx = np.linspace(0, len(samples) - 1, keep).round().astype(int)
    return [float(samples[i]) for i in idx]


def call_count(
    runner: Callable[[Mapping[str, np.ndarray]], object],
    inputs,
    runs: int,
    min_time_s: float,
    *,
    timed: bool = False,
) -> tuple[int, float]:
    """Timed calls that give ``runner`` at least ``min_time_s`` seconds (never fewer than ``runs``, at most
    :data:`MAX_CALLS`), and the seconds of one call: the fastest of three (the caller has warmed it up; a model
    whose one call already fills the time is called once). With no minimum time, ``runs`` calls, and the runner
    is called only when ``timed`` asks for its seconds (NaN otherwise)."""
    if min_time_s <= 0 and not timed:
        return runs, float("nan")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        runner(inputs)
        best = min(best, time.perf_counter() - t0)
        if best * runs >= min_time_s:  # a slow model: ``runs`` calls already fill the time
            return runs, best
    return int(min(MAX_CALLS, max(runs, np.ceil(min_time_s / max(best, 1e-7))))), best


def calls_for(runner: Callable[[Mapping[str, np.ndarray]], object], inputs, runs: int, min_time_s: float) -> int:
    """The timed calls of :func:`call_count`."""
    return call_count(runner, inputs, runs, min_time_s)[0]


def _rss_now() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5 = reset the peak RSS (VmHWM) of this process
        return True
    except OSError:
        return False


def _read_hwm() -> int | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def measure_peak_rss(fn: Callable[[], object]) -> int:
    """Bytes of resident memory added at the peak while ``fn`` runs (activations, workspaces)."""
    before = _rss_now()
    if _reset_hwm():
        fn()
        hwm = _read_hwm()
        if hwm is not None:
            return max(0, hwm - before)
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_now())
            time.sleep(0.001)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        stop.set()
        t.join()
    return max(0, peak[0] - before)


def benchmark(
    runner: Callable[[Mapping[str, np.ndarray]], object],
    inputs: Mapping[str, np.ndarray],
    cfg: BenchConfig = BenchConfig(),
    ctx: RunContext | None = None,
    stage: str = "benchmark",
) -> LatencyResult:
    """Time ``runner(inputs)``: warm-up, then ``cfg.runs`` samples, or more to fill ``cfg.min_time_s`` seconds.
    Checks cancel every 10 calls."""
    if ctx:
        ctx.begin(stage, total=cfg.warmup + cfg.runs)
    for i in range(cfg.warmup):
        runner(inputs)
        if ctx and i % 10 == 9:
            ctx.step(10)
    peak = measure_peak_rss(lambda: runner(inputs))
    runs = calls_for(runner, inputs, cfg.runs, cfg.effective_min_time_s)
    if ctx and runs > cfg.runs:
        ctx.begin(stage, total=cfg.warmup + runs)
        ctx.step(cfg.warmup)
    every = max(10, runs // 20)  # a few dozen progress events, however many calls
    samples = []
    for i in range(runs):
        t0 = time.perf_counter()
        runner(inputs)
        samples.append((time.perf_counter() - t0) * 1e3)
        if ctx and i % every == every - 1:
            ctx.step(every)
    return LatencyResult(tuple(samples), cfg.effective_threads, peak)


def side_by_side(
    runners: Mapping[str, Callable[[Mapping[str, np.ndarray]], object]],
    inputs: Mapping[str, np.ndarray],
    *,
    runs: int = 200,
    rounds: int = 10,
    warmup: int = 5,
    threads: int | None = None,
    ctx: RunContext | None = None,
    stage: str = "side by side",
    min_time_s: float = 0.0,
    between_rounds: Callable[[], object] | None = None,
    chunk_s: float | None = None,
) -> dict[str, LatencyResult]:
    """Time several runners against each other, for ratios that hold on a shared machine.

    ``rounds`` rounds; in each, every runner in turn gets ``warmup`` untimed calls and its share of the timed
    ones (``runs`` in all, or more to fill ``min_time_s`` seconds: the count is set once, from the fastest of three
    calls after the first warm-ups, and every round of a runner has as many calls); samples are pooled per runner.
    A slow phase of the machine (a busy neighbour, a stolen core) then hits every runner alike, and each chunk is
    long enough that what is timed is the model, not the switch between runtimes: timing one call of each in turn,
    without a warm-up call, measured the switch (thread pools of the previous runtime still spinning, caches
    refilled) and made FP32 PyTorch eager 3x slower.

    ``chunk_s``: rounds are added (up to :data:`MAX_ROUNDS`) until no runner's chunk of timed calls is longer than
    this, and a round's warm-up then takes at most half of it (one call at least). A shared host switches between
    speeds every 0.1-0.45 s (bench_timing's speed levels, AVX-512 EPYC VM): a chunk longer than that falls in another
    speed than its neighbour's. There, with 50 ms chunks, a candidate's speed-up re-timed twice agreed within 5 % in
    7 of 8 pairs, against 13 of 24 with 10 rounds of 300 ms (bench/results/timing-avx512-vnni-chunks,
    -1thread-chunks, against the six runs before them).
    ``between_rounds``: called before the first round and then about ``rounds`` times in all, evenly
    (:meth:`TimingWatch.probe <workbench.measure.noise.TimingWatch.probe>` reads the machine's speed there).
    """
    names = list(runners)
    per_call: dict[str, float] = {}
    calls: dict[str, int] = {}
    peaks: dict[str, int | None] = {}
    for name, run in runners.items():
        for _ in range(warmup):
            run(inputs)
        peaks[name] = measure_peak_rss(lambda run=run: run(inputs))
        calls[name], per_call[name] = call_count(run, inputs, runs, min_time_s, timed=chunk_s is not None)
    n_rounds = rounds
    if chunk_s:
        longest = max(calls[k] * per_call[k] for k in names)
        n_rounds = max(rounds, min(MAX_ROUNDS, int(np.ceil(longest / chunk_s - 1e-6))))
    per_round = {k: int(min(MAX_CALLS, max(1, np.ceil(calls[k] / n_rounds)))) for k in names}
    warm = dict.fromkeys(names, warmup)
    if chunk_s:
        warm = {k: min(warmup, max(1, int(0.5 * chunk_s / max(per_call[k], 1e-9)))) for k in names}
    probe_every = max(1, n_rounds // max(1, rounds))
    step_every = max(1, n_rounds // 20)  # a few dozen progress events, however many rounds
    samples: dict[str, list[float]] = {k: [] for k in names}
    round_p50: dict[str, list[float]] = {k: [] for k in names}
    if ctx:
        ctx.begin(stage, total=n_rounds * len(names))
    for i in range(n_rounds):
        if between_rounds is not None and i % probe_every == 0:
            between_rounds()
        for name, run in runners.items():
            for _ in range(warm[name]):
                run(inputs)
            chunk = []
            for _ in range(per_round[name]):
                t0 = time.perf_counter()
                run(inputs)
                chunk.append((time.perf_counter() - t0) * 1e3)
            samples[name].extend(chunk)
            round_p50[name].append(float(np.median(chunk)))
        if ctx and (i % step_every == step_every - 1 or i == n_rounds - 1):
            ctx.step(len(names) * (i % step_every + 1))
    return {
        k: LatencyResult(
            tuple(v), BenchConfig(threads=threads).effective_threads, peaks.get(k), extra={"round_p50_ms": round_p50[k]}
        )
        for k, v in samples.items()
    }


@dataclass(frozen=True)
class Timing:
    """One latency measurement as the pipeline makes it: the candidate's samples, the baseline's samples timed in
    the same rounds (when paired), whether the machine was quiet enough to trust them, and how long it waited."""

    result: LatencyResult
    baseline: LatencyResult | None = None
    check: NoiseCheck = NoiseCheck(False)
    waited_s: float = 0.0
    attempts: int = 1

    @property
    def round_speedups(self) -> list[float]:
        """Per round, the baseline's p50 over the candidate's (empty when not paired)."""
        if self.baseline is None:
            return []
        return round_speedups({"b": self.baseline, "c": self.result}, "b", "c")

    def paired(self) -> dict[str, Any]:
        """The speed-up over the baseline timed in the same rounds and its 95 % confidence interval
        (:func:`paired_speedup`: ``speedup``, ``speedup_ci``), with the per-round ratios (``speedup_rounds``);
        empty when not paired."""
        if self.baseline is None:
            return {}
        rounds = self.round_speedups
        return {**paired_speedup(rounds, self.baseline.p50 / max(self.result.p50, 1e-12)), "speedup_rounds": rounds}

    def baseline_rounds(self) -> list[float]:
        """The baseline's p50 in each round, to 4 significant digits, as ``compared_with`` records it (empty when
        not paired)."""
        if self.baseline is None:
            return []
        return recorded_rounds(self.baseline.extra.get("round_p50_ms", ()))

    @property
    def speedup(self) -> float | None:
        """:meth:`paired`'s speed-up (None when not paired)."""
        return self.paired().get("speedup")

    def metrics(self) -> dict[str, Any]:
        """What a candidate records of this timing (beside ``LatencyResult.summary``)."""
        m: dict[str, Any] = {**self.check.to_metrics(), "timing_attempts": self.attempts}
        if self.waited_s >= 0.05:
            m["waited_for_quiet_s"] = round(self.waited_s, 2)
        return m


def measure_latency(
    runner: Callable[[Mapping[str, np.ndarray]], object],
    inputs: Mapping[str, np.ndarray],
    cfg: BenchConfig = BenchConfig(),
    ctx: RunContext | None = None,
    stage: str = "latency",
    *,
    against: Callable[[Mapping[str, np.ndarray]], object] | None = None,
) -> Timing:
    """Time ``runner`` the way every candidate is timed, and say whether the timing can be trusted.

    Waits (at most ``cfg.settle_s``) for other programs to leave the cores, reads the machine's state around the
    timing (:mod:`workbench.measure.noise`), and re-measures up to ``cfg.retries`` times when it was noisy; the
    last timing is kept, flagged when still noisy. With ``against`` (the baseline's runner) and ``cfg.paired``,
    both are timed in alternating rounds (:func:`side_by_side`, after ``cfg.warmup`` warm-ups each), so their
    ratio is taken under the same conditions however the machine moved. Runs inside ``ctx.timed()``.
    """
    ctx = ctx or RunContext()
    threads = cfg.effective_threads
    wait = settle_seconds() if cfg.settle_s is None else cfg.settle_s
    retries = timing_retries() if cfg.retries is None else cfg.retries
    paired = against is not None and cfg.paired
    waited, timing = 0.0, None
    for attempt in range(1, retries + 2):
        if wait > 0:  # a re-measure also waits for the machine's usual speed (a VM's slow phase to pass)
            waited += settle(threads, wait, speed=attempt > 1)
        with ctx.timed(), TimingWatch() as watch:
            if paired:
                assert against is not None
                for _ in range(cfg.warmup):
                    runner(inputs)
                    against(inputs)
                rounds = max(1, min(cfg.rounds, cfg.runs))
                pair = side_by_side(
                    {"candidate": runner, "baseline": against},
                    inputs,
                    runs=max(cfg.runs, rounds),
                    rounds=rounds,
                    warmup=min(cfg.warmup, 2),
                    threads=cfg.threads,
                    ctx=ctx,
                    stage=stage,
                    min_time_s=cfg.effective_min_time_s,
                    between_rounds=watch.probe,
                    chunk_s=cfg.chunk_s,
                )
                res, base = pair["candidate"], pair["baseline"]
                ratios = round_speedups(pair, "baseline", "candidate")
            else:
                res, base, ratios = benchmark(runner, inputs, cfg, ctx, stage=stage), None, []
        check = watch.check(threads, res.samples_ms, ratios)
        timing = Timing(res, base, check, waited, attempt)
        if not check.noisy:
            break
    assert timing is not None
    return timing


def round_speedups(timed: Mapping[str, LatencyResult], baseline: str, other: str) -> list[float]:
    """Per round of a :func:`side_by_side` run, ``baseline``'s p50 over ``other``'s p50.

    The two chunks of one round ran seconds apart, so each ratio is taken under one state of the machine;
    their spread shows how far a shared host moved the pooled ratio (a slow phase that lasts a few rounds
    slows some runtimes more than others)."""
    return [b / o for b, o in zip(timed[baseline].extra["round_p50_ms"], timed[other].extra["round_p50_ms"])]


def paired_speedup(round_ratios: Sequence[float], pooled: float | None = None) -> dict[str, Any]:
    """The speed-up of a paired timing: the median of its per-round ratios (each round's baseline chunk over the
    candidate chunk timed right beside it, so a speed change of the machine between rounds cancels out; one slow
    chunk moves one ratio, not the median), with its 95 % confidence interval (:func:`median_interval`) as
    ``speedup_ci``. ``pooled`` (the baseline's pooled p50 over the candidate's) stands in with fewer than 3 rounds.

    Pooled p50s can each fall in another of a shared host's speeds: bench_timing's reference on the AVX-512 EPYC VM
    once put digits-cnn INT8 at 1.38x from pooled p50s where its rounds' median said 0.97x and the workbench's paired
    timing and both re-timings 0.96-1.01x (timing-avx512-vnni-1thread-rules)."""
    ratios = [float(r) for r in round_ratios if r and r > 0 and math.isfinite(r)]
    if len(ratios) < 3:
        return {"speedup": pooled, "speedup_ci": None}
    ci = median_interval(ratios)
    return {"speedup": float(np.median(ratios)), "speedup_ci": [ci[0], ci[1]] if ci else None}


#: the baseline's most recent timings a p50 at usual speed is taken over
USUAL_TIMINGS = 25
#: quiet timings (not flagged noisy) a usual speed needs to be taken over them alone
USUAL_QUIET_TIMINGS = 3


def recorded_rounds(p50s_ms: Iterable[float]) -> list[float]:
    """A baseline's p50 in each round, to 4 significant digits, as ``compared_with["round_p50_ms"]`` records it
    (:func:`usual_p50` pools them)."""
    return [float(f"{r:.4g}") for r in p50s_ms]


def middle_half_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    """The weighted mean of the middle half of ``values``: sorted, each holds its share of the total weight, and
    those whose share's midpoint lies between the 25th and 75th percentile count (always one at least: the share
    holding the 50th percentile has its midpoint in that range)."""
    order = np.argsort(values, kind="stable")
    v, w = np.asarray(values, dtype=float)[order], np.asarray(weights, dtype=float)[order]
    mid = (np.cumsum(w) - w / 2) / w.sum()
    keep = (mid >= 0.25 - 1e-9) & (mid <= 0.75 + 1e-9)  # 3/12 in floats may fall a hair short of 0.25
    return float(np.average(v[keep], weights=w[keep]))


def timing_rounds(timing: Mapping[str, Any]) -> list[float]:
    """One of a baseline's timings (:meth:`RunStore.baseline_timings
    <workbench.store.runstore.RunStore.baseline_timings>`) as :func:`usual_p50` reads it: its rounds' p50s, else
    its stretches' medians (:func:`~workbench.measure.noise.stretch_medians`), else its p50."""
    rounds = timing.get("round_p50_ms") or stretch_medians(timing.get("samples_ms") or ()) or [timing["p50_ms"]]
    return [float(r) for r in rounds]


def usual_p50(baseline_timings: Sequence[Mapping[str, Any]], speedup: float | None) -> dict[str, Any]:
    """A candidate's p50 at this machine's usual speed: the baseline's usual p50 over this timing's paired speed-up.

    A p50 is taken over a few seconds; a shared host's own speed moves by more than 5 % over such a span
    (bench_timing's reference kernel, no model running: its median over 6 s windows moved 4.7-21.3 % on the
    AVX-512 EPYC VM), so two timings of one candidate differ by that much whatever the estimator. The paired
    speed-up is taken in rounds beside the baseline and repeats far better there (8 of 8 re-timed pairs within 5 %
    in timing-avx512-vnni-p50rule and -1thread-p50rule, against 3 of 8 p50s).

    The baseline's usual p50 is taken over its :data:`USUAL_TIMINGS` most recent timings (``baseline_timings``,
    oldest first: its own and every round it ran beside a candidate, :meth:`RunStore.baseline_timings
    <workbench.store.runstore.RunStore.baseline_timings>`), the quiet ones alone when there are
    :data:`USUAL_QUIET_TIMINGS` of them: the mean of the middle half of their rounds' p50s, each timing weighing
    the same however many rounds it ran (a timing without rounds gives its stretches' medians,
    :func:`~workbench.measure.noise.stretch_medians`, or its p50).

    Why rounds, and why each timing once: the median of a few timings' p50s jumped by 10 % when a fifth came in
    (digits-cnn, 2 threads, timing-avx512-vnni-usual), as a median can sit in the gap between a shared host's two
    speeds where the middle half's mean moves smoothly; but with every round counted once, a careful re-timing's
    51 rounds outweighed the 34 of the four timings before it, and its baseline's usual p50 followed the machine's
    speed of the moment (11.4 % apart over two re-timings of digits-cnn, timing-avx512-vnni-pooled). Weighing each
    timing the same, the worst re-timed pair was 5.2 % apart where its raw p50s were 21.9 % (timing-avx512-vnni-equal)
    and 10.6 % where they were 16.5 % (-1thread-equal, where the speed-up itself moved 8.1 %).

    The raw p50 stays what was measured; this one says what it would be at the speed the machine usually runs at,
    so candidates timed at different moments compare. ``speedup`` 1.0 for the baseline itself. Empty without a
    timing or a speed-up."""
    recent = [t for t in baseline_timings if t.get("p50_ms")][-USUAL_TIMINGS:]
    quiet = [t for t in recent if not t.get("noisy")]
    used = quiet if len(quiet) >= USUAL_QUIET_TIMINGS else recent
    if not used or not speedup or speedup <= 0 or not math.isfinite(speedup):
        return {}
    per_timing = [timing_rounds(t) for t in used]
    ref = middle_half_mean([r for rs in per_timing for r in rs], [1 / len(rs) for rs in per_timing for _ in rs])
    rounds = sum(map(len, per_timing))
    return {
        "p50_usual_ms": ref / speedup,
        "usual_speed": {
            "baseline_p50_ms": ref,
            "timings": len(used),
            "rounds": rounds,
            "quiet_only": used is quiet,
        },
    }


def ratio_summary(ratios: list[float], target: float) -> dict:
    """Median, range and how many of the per-round ratios reach ``target``."""
    return {
        "median": float(np.median(ratios)) if ratios else None,
        "min": min(ratios, default=None),
        "max": max(ratios, default=None),
        "rounds": len(ratios),
        "rounds_at_target": sum(r >= target for r in ratios),
        "target": target,
    }


def format_ratio_summary(s: dict) -> str:
    if not s["rounds"]:
        return "no rounds"
    return (
        f"median {s['median']:.2f}x, range {s['min']:.2f}-{s['max']:.2f}x, "
        f"{s['rounds_at_target']} of {s['rounds']} rounds >= {s['target']:g}x"
    )


_MEM_PROBE = r"""
import sys, json, numpy as np, onnxruntime as ort
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith(("VmHWM:", "VmRSS:")):
            yield line.split()[0], int(line.split()[1]) * 1024
before = dict(hwm())["VmRSS:"]
so = ort.SessionOptions(); so.intra_op_num_threads = int(sys.argv[3]); so.log_severity_level = 3
disabled = [x for x in sys.argv[4].split(",") if x]
sess = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"], disabled_optimizers=disabled)
with np.load(sys.argv[2]) as z:
    feed = {i.name: z[i.name] for i in sess.get_inputs()}
sess.run(None, feed)
print(json.dumps(dict(hwm())["VmHWM:"] - before))
"""


def onnx_inference_memory(path, inputs: Mapping[str, np.ndarray], threads: int) -> int | None:
    """Peak resident bytes a fresh process needs to load an ONNX model and run it once, beyond the
    runtime's own import. Measured in a subprocess: in this process, memory freed by earlier sessions
    is reused and would hide the model's real footprint. None where /proc is not available."""
    import subprocess
    import sys
    import tempfile

    from ..core.artifact import session_hints

    if not os.path.exists("/proc/self/status"):
        return None
    disabled = session_hints(path)["disabled_optimizers"]
    with tempfile.TemporaryDirectory() as d:
        feed = os.path.join(d, "inputs.npz")
        np.savez(feed, **{k: np.ascontiguousarray(v) for k, v in inputs.items()})
        r = subprocess.run(
            [sys.executable, "-c", _MEM_PROBE, str(path), feed, str(threads), ",".join(disabled)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    if r.returncode != 0:
        return None
    return int(r.stdout.strip().splitlines()[-1])
