"""The same search on a Ray cluster (a local Ray instance started here), and a cluster that does not answer."""

from __future__ import annotations

import os
import socket

import pytest

from workbench import BenchConfig, RunStore
from workbench.optimize import run_recipe
from workbench.search.executors import ExecutorUnavailableError
from workbench.search.run import SearchSpace, search
from workbench.tasks.budget import Budget

ray = pytest.importorskip("ray")
BENCH = BenchConfig(warmup=2, runs=30, threads=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_is_a_clear_error_and_local_still_works(digits_model, store):
    addr = f"127.0.0.1:{_free_port()}"
    with pytest.raises(ExecutorUnavailableError, match=f"Ray cluster at '{addr}' does not answer.*executor='local'"):
        search(
            digits_model,
            Budget(max_accuracy_drop=0.02),
            SearchSpace.default(["int8-dynamic"]),
            trials=1,
            store=store,
            executor="ray",
            address=addr,
            bench=BENCH,
        )
    assert store.candidates() == []  # nothing ran, nothing half-recorded
    assert not ray.is_initialized()
    res = search(
        digits_model,
        Budget(max_accuracy_drop=0.02),
        SearchSpace.default(["int8-dynamic"]),
        trials=1,
        store=store,
        bench=BENCH,
    )
    assert res.best is not None
    with pytest.raises(ExecutorUnavailableError, match="'address' parameter of the Ray executor"):
        search(digits_model, None, trials=1, store=store, executor="ray", address="not an address")
    with pytest.raises(ExecutorUnavailableError, match="'executor' parameter must be one of 'local', 'ray'"):
        search(digits_model, None, trials=1, store=store, executor="slurm")


@pytest.fixture(scope="module")
def local_ray():
    kw = dict(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ray.init(**kw)
    except Exception:  # Ray gives its raylet 30 s to start: a busy machine can need a second try
        ray.shutdown()
        ray.init(**kw)
    yield
    ray.shutdown()


def test_search_on_ray_records_the_same_candidates(digits_model, store, tmp_path, local_ray):
    space = SearchSpace.default(["int8-dynamic"])
    res = search(
        digits_model, Budget(max_accuracy_drop=0.02), space, trials=3, store=store, executor="ray", bench=BENCH
    )
    assert res.executor == "ray" and len(res.trials) == 3 and res.best is not None
    finals = [t.candidate for t in res.trials]
    for c in finals:
        assert c.ok and c.notes["ray"]["pid"] != os.getpid()  # built and measured in a Ray worker ...
        assert os.path.exists(c.artifact_path)  # ... and its artifact copied beside this run store
        assert store.get(c.id).artifact_sha256 == c.artifact_sha256
    # two trials ran at once (2 CPUs), yet no two latency measurements on this node overlapped in time
    windows = sorted(w for c in finals for w in c.notes["ray"]["latency_windows"])
    # one window per timing attempt (a noisy timing is re-measured once)
    assert len(windows) == sum(c.get("timing_attempts") for c in finals) >= 3
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(windows, windows[1:]))
    # a worker scores exactly what a local run scores (same model fingerprint, same data)
    local = RunStore(tmp_path / "local.sqlite")
    for t in res.trials[:2]:
        c = run_recipe(digits_model, t.recipe, store=local, bench=BENCH)
        assert c.key == t.candidate.key and c.get("accuracy") == t.candidate.get("accuracy")
