"""The same search on a Ray cluster (a local Ray instance started here), and a cluster that does not answer."""

from __future__ import annotations

import os
import socket

import pytest

from workbench import BenchConfig, RunStore
from workbench.optimize import run_recipe
from workbench.search.executors import ExecutorUnavailableError, ray_listeners, start_local_ray
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
    start_local_ray(num_cpus=2)  # how `search --executor ray` without an address starts it
    yield
    ray.shutdown()


def test_local_ray_listens_on_loopback_only(local_ray):
    """Every socket the local Ray instance listens on (GCS, raylet, agents, workers, this driver's own) is on
    loopback: nothing it starts can be reached from the network."""
    import ipaddress

    listeners = ray_listeners()
    names = {name for name, _ip, _port in listeners}
    assert {"gcs_server", "raylet"} <= names, listeners  # the services are there, and were read
    for name, ip, port in listeners:
        addr = ipaddress.ip_address(ip)
        mapped = addr.ipv4_mapped if addr.version == 6 else None
        assert addr.is_loopback or (mapped is not None and mapped.is_loopback), (name, ip, port)
    assert ray._private.worker.global_worker.node.node_ip_address == "127.0.0.1"
    # the switch that keeps it local is not left behind for whatever this process does next
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ


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


@pytest.mark.parametrize(
    "ip, loopback",
    [("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("::", False)]
    + [("192.0.2.2", False), ("::ffff:192.0.2.2", False), ("not an address", False)],
)
def test_what_counts_as_loopback(ip, loopback):
    from workbench.search.executors import _is_loopback

    assert _is_loopback(ip) is loopback
