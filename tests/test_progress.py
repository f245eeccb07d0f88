"""Plain progress lines for output that is not a terminal (a fake clock: no real time in the test)."""

from __future__ import annotations

import io

from workbench.core.context import LineReporter, ProgressEvent, RunContext, TqdmReporter, cli_reporter


def test_lines_at_stage_start_every_interval_with_time_left_and_at_stage_end():
    ticks = iter([0, 4, 12, 25, 40, 41, 43])
    out = io.StringIO()
    rep = LineReporter(out, interval=10, clock=ticks.__next__)
    for done in (0, 1, 3, 5, 10):  # at t = 0, 4, 12, 25, 40
        rep(ProgressEvent("m / int8 / latency", done, 10))
    rep(ProgressEvent("m / int8 / evaluate", 0, None))  # t = 41: a new stage closes the first
    rep.close()  # t = 43
    assert out.getvalue().splitlines() == [
        "[     0 s] m / int8 / latency (10 steps)",
        "[    12 s] m / int8 / latency: 3/10, about 28 s left",  # 12 s for 3 steps: 4 s a step, 7 to go
        "[    25 s] m / int8 / latency: 5/10, about 25 s left",
        "[    40 s] m / int8 / latency: 10/10",
        "[    41 s] m / int8 / latency: done in 41 s",
        "[    41 s] m / int8 / evaluate",
        "[    43 s] m / int8 / evaluate: done in 2 s",
    ]


def test_a_run_context_drives_it():
    out = io.StringIO()
    ctx = RunContext(on_progress=LineReporter(out, clock=iter(range(100)).__next__))
    ctx.begin("digits / baseline", total=2, message="timing")
    ctx.step()
    assert out.getvalue().startswith("[     0 s] digits / baseline (2 steps): timing")


def test_commands_pick_lines_off_a_terminal_and_nothing_for_json(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a log file, not a terminal
    assert isinstance(cli_reporter(), LineReporter)
    assert isinstance(cli_reporter(force_bars=True), TqdmReporter) and not cli_reporter(force_bars=True).disable
    assert cli_reporter(quiet=True).disable
