"""Shared fixtures. Models are loaded once per session; every test gets its own run store."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# caches (trained heads, the digits CNN, FP32 reference outputs) live in the checkout, shared by all tests
os.environ.setdefault("WORKBENCH_CACHE", str(ROOT / ".workbench" / "cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network
# a test never waits for a quiet machine (the timing tests that do set BenchConfig.settle_s themselves)
os.environ.setdefault("WORKBENCH_SETTLE_S", "0")
# nor re-measures a noisy timing (tests assert outcomes, not latencies; tests/test_timing.py sets retries itself)
os.environ.setdefault("WORKBENCH_TIMING_RETRIES", "0")
# and times exactly BenchConfig.runs calls, not 0.5 s of calls per runner (tests/test_timing.py sets min_time_s)
os.environ.setdefault("WORKBENCH_MIN_TIME_S", "0")
ARTIFACTS = Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS", ROOT / "test-artifacts"))

# Debian's chromium (`make test` installs it): Playwright's own browser download cannot work offline
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's chromium: skip them, with the reason, where it is not installed."""
    if HAVE_CHROMIUM:
        return
    skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if {"page", "browser", "launch_browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


# pytest-playwright's browser fixtures are session-scoped: override them here, at the top, so every test
# that launches a browser (the dashboard e2e test, the report check) gets the system chromium
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 2400}}


@pytest.fixture(scope="session")
def test_artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def store(tmp_path):
    from workbench import RunStore

    return RunStore(tmp_path / "runs.sqlite")


@pytest.fixture(scope="session")
def digits_model():
    from workbench import load_model

    return load_model("digits-cnn", n_eval=200)


@pytest.fixture(scope="session")
def minilm_model():
    """all-MiniLM-L6-v2 on BBC News, scored on 96 eval articles (the head is trained once and cached)."""
    from workbench import load_model

    return load_model("minilm", n_eval=96)


@pytest.fixture(scope="session")
def fast_bench():
    from workbench import BenchConfig

    return BenchConfig(warmup=2, runs=5)


@pytest.fixture
def cli():
    """``cli(*args, cwd=folder)``: the workbench command run in this process (a store in ``cwd``), as a
    CompletedProcess. Faster than a subprocess; the messages are the CLI's own, and an exception that
    escapes main() fails the test. The subprocess tests (tests/test_own_data_cli.py) run the real command."""
    return _run_cli


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The workbench command, in this process (the messages are the CLI's own; an escaping exception fails)."""
    import contextlib
    import io

    from workbench.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = list(args) if "--store" in args else ["--store", str(cwd / "runs.sqlite"), *args]
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as e:  # argparse's own usage errors
                rc = e.code
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())
