"""Where search trials run: in this process (the default) or on a Ray cluster.

Both executors take the same inputs and record the same candidates in the caller's run store.

- :class:`LocalExecutor` runs trials one after the other in this process: timings never overlap.
- :class:`RayExecutor` sends each trial to a Ray worker. The worker loads the model by name (its
  fingerprint must equal the caller's, so both sides score the very same model and data), builds
  and evaluates the candidate, and returns the record plus the artifact files; the caller stores
  them. Accuracy evaluation of several trials may overlap on a node, but latency is measured one
  trial at a time per node: a node-wide file lock (exclusive while timing, shared while building or
  evaluating) keeps other trials' work off the cores while one is being timed.

>>> ex = make_executor("local")
>>> ex.slots
1
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.context import RunContext
from ..core.errors import WorkbenchError
from ..measure.benchmark import BenchConfig
from ..models.registry import LoadedModel
from ..optimize import run_baseline, run_recipe
from ..recipes.registry import Recipe
from ..store.candidate import Candidate
from ..store.runstore import RunStore

__all__ = [
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "ExecutorUnavailableError",
    "make_executor",
    "EXECUTORS",
    "start_local_ray",
    "ray_listeners",
]

EXECUTORS = ("local", "ray")


class ExecutorUnavailableError(WorkbenchError):
    """The requested executor cannot run trials (Ray missing, cluster address not answering)."""


class Executor:
    """Runs recipes for one model and records the candidates in ``store``. ``slots`` trials at once."""

    slots: int = 1
    name: str = "executor"

    def baseline(self, model: LoadedModel, *, store: RunStore, bench: BenchConfig, ctx: RunContext) -> Candidate:
        raise NotImplementedError

    def run(
        self,
        model: LoadedModel,
        recipes: Sequence[Recipe],
        *,
        store: RunStore,
        baseline: Candidate,
        bench: BenchConfig,
        ctx: RunContext,
    ) -> Iterator[tuple[int, Candidate]]:
        """Yield ``(index into recipes, candidate)`` as each trial finishes (any order)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor holds (connections); the default holds nothing."""


class LocalExecutor(Executor):
    """Trials one at a time in this process; artifacts shared between trials (export, fusions) are built once."""

    name = "local"

    def __init__(self) -> None:
        self._memo: dict = {}

    def baseline(self, model, *, store, bench, ctx):
        return run_baseline(model, store=store, bench=bench, ctx=ctx)

    def run(self, model, recipes, *, store, baseline, bench, ctx):
        for i, r in enumerate(recipes):
            yield i, run_recipe(model, r, store=store, baseline=baseline, bench=bench, ctx=ctx, memo=self._memo)


# ---- Ray -----------------------------------------------------------------------------------------
def _split_address(address: str) -> tuple[str, int] | None:
    """host, port of a Ray address ("host:port" or "ray://host:port"); None for "auto"/"local"."""
    if address in ("auto", "local"):
        return None
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorUnavailableError(
            f"The 'address' parameter of the Ray executor must be 'host:port', 'ray://host:port', 'auto' or "
            f"'local'. Got {address!r} instead."
        )
    return host or "127.0.0.1", int(port)


def _answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


#: Ray's switch for a machine-local instance (what it does on macOS and Windows): every service on loopback
_RAY_LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_local_ray(num_cpus: int | None = None) -> None:
    """Start a Ray instance for this machine alone: the GCS, the raylet, its agents and workers listen on 127.0.0.1.

    ``ray.init(_node_ip_address="127.0.0.1")`` is not enough: Ray turns a loopback address into the machine's
    network address, and its services then listen on every interface (measured with Ray 2.60). Ray's local-only
    mode (its default on macOS and Windows) keeps the node on loopback. After the start, the listening sockets of
    every process Ray started are read; if one listens beyond loopback, Ray is shut down again and
    ExecutorUnavailableError names it.
    """
    import ray

    before = {(ip, port) for _name, ip, port in ray_listeners()}  # this process's own, and its children's
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    saved_env, saved_flag = os.environ.get(_RAY_LOCAL_ONLY), getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[_RAY_LOCAL_ONLY] = "0"  # read by the processes Ray starts ...
    if constants is not None and saved_flag is not None:
        constants.ENABLE_RAY_CLUSTER = False  # ... and by this one, which imported Ray already
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if num_cpus is not None:
        kw["num_cpus"] = num_cpus
    try:
        try:
            ray.init(**kw)
        except Exception:  # Ray gives its raylet 30 s to start: a busy machine can need a second try
            ray.shutdown()
            ray.init(**kw)
    except Exception as e:
        raise ExecutorUnavailableError(
            f"Cannot start a local Ray instance: {type(e).__name__}: {e}. Nothing was run; run with "
            "executor='local' instead."
        ) from None
    finally:
        if saved_env is None:
            os.environ.pop(_RAY_LOCAL_ONLY, None)
        else:
            os.environ[_RAY_LOCAL_ONLY] = saved_env
        if constants is not None and saved_flag is not None:
            constants.ENABLE_RAY_CLUSTER = saved_flag
    exposed = [x for x in ray_listeners(exclude=before) if not _is_loopback(x[1])]
    if exposed:
        ray.shutdown()
        names = ", ".join(f"{name} on {ip}:{port}" for name, ip, port in exposed)
        raise ExecutorUnavailableError(
            f"The local Ray instance listened beyond loopback ({names}), so it was shut down: nothing was run. "
            "Start Ray yourself on a trusted network (`ray start --head`) and pass its address, or run with "
            "executor='local'."
        )


def ray_listeners(exclude: set[tuple[str, int]] = frozenset()) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of this process and the processes it started
    (Ray's GCS, raylet, agents and workers), less ``exclude`` (the sockets that were there before Ray started)."""
    import psutil

    me = psutil.Process(os.getpid())
    out = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            name = proc.name()
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN and (c.laddr.ip, c.laddr.port) not in exclude:
                out.append((name, c.laddr.ip, c.laddr.port))
    return sorted(set(out))


def _is_loopback(ip: str) -> bool:
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1, an IPv6 socket bound to IPv4 loopback
    return addr.is_loopback or bool(mapped and mapped.is_loopback)


class RayExecutor(Executor):
    """Trials as Ray tasks, ``cpus_per_trial`` CPUs each (default: the bench thread count).

    ``address``: None or "local" starts (or reuses) a Ray instance on this machine; "auto" joins the
    cluster this machine belongs to; "host:port" / "ray://host:port" connects to a head node. An address
    that does not answer within ``connect_timeout_s`` raises :class:`ExecutorUnavailableError` before
    anything runs: nothing recorded is touched and a local run is still possible.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, *, cpus_per_trial: int | None = None, connect_timeout_s: float = 5.0
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorUnavailableError(
                "The Ray executor needs the 'ray' package: pip install 'workbench[ray]' (or use executor='local')."
            ) from None
        self._ray = ray
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self._started_here = False
        if not ray.is_initialized():
            target = _split_address(address) if address else None
            if target is not None and not _answers(*target, connect_timeout_s):
                raise ExecutorUnavailableError(
                    f"The Ray cluster at {address!r} does not answer (no connection to {target[0]}:{target[1]} "
                    f"within {connect_timeout_s:g} s). Nothing was run and everything recorded is kept. Start it "
                    "with `ray start --head`, check the address, or run with executor='local'."
                )
            if address in (None, "local"):
                start_local_ray()
                self._started_here = True
                return
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as e:  # ConnectionError, RuntimeError, grpc errors
                raise ExecutorUnavailableError(
                    f"Cannot join the Ray cluster at {address!r}: {type(e).__name__}: {e}. Nothing was run; "
                    "run with executor='local' instead."
                ) from None
            self._started_here = True

    @property
    def slots(self) -> int:  # type: ignore[override]
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        return max(1, cpus // (self.cpus_per_trial or 1))

    def _remote(self, bench: BenchConfig):
        cpus = self.cpus_per_trial or 1
        return self._ray.remote(num_cpus=cpus, max_retries=0)(_ray_trial)

    def baseline(self, model, *, store, bench, ctx):
        from ..optimize import find_candidate

        if hit := find_candidate(store, model, None, bench):
            return hit
        ref = self._remote(bench).remote(_model_spec(model), None, _bench_dict(bench), None)
        return _import_result(self._ray.get(ref), store)

    def run(self, model, recipes, *, store, baseline, bench, ctx):
        remote = self._remote(bench)
        spec, bd, base = _model_spec(model), _bench_dict(bench), baseline.to_dict()
        pending = {remote.remote(spec, r.to_dict(), bd, base): i for i, r in enumerate(recipes)}
        ctx.begin(f"{model.name} / ray ({len(pending)} trials)", total=len(pending))
        try:
            while pending:
                done, _ = self._ray.wait(list(pending), num_returns=1, timeout=0.5)
                ctx.check()
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        result = self._ray.get(ref)
                    except Exception as e:
                        r = recipes[i]
                        result = {
                            "candidates": [
                                Candidate(
                                    id=Candidate.new_id(),
                                    key=f"ray-failed-{Candidate.new_id()}",
                                    model=model.name,
                                    task=model.task.name,
                                    recipe_name=r.name,
                                    recipe=r.to_dict(),
                                    runtime="onnxruntime",
                                    status="failed",
                                    parent_id=baseline.id,
                                    error=f"Ray task failed: {type(e).__name__}: {e}",
                                ).to_dict()
                            ],
                            "files": {},
                        }
                    ctx.step(message=recipes[i].name)
                    yield i, baseline if result.get("same_as_baseline") else _import_result(result, store)
        finally:
            for ref in pending:  # cancelled or interrupted: stop what has not finished
                self._ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()
            self._started_here = False


def make_executor(kind: str | Executor = "local", address: str | None = None, **kw: Any) -> Executor:
    """``"local"`` or ``"ray"`` (with ``address``), or an Executor instance returned as is."""
    if isinstance(kind, Executor):
        return kind
    if kind == "local":
        if address:
            raise ExecutorUnavailableError(
                f"The 'address' parameter only applies to executor='ray'. Got address={address!r} with 'local'."
            )
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(address, **kw)
    raise ExecutorUnavailableError(
        f"The 'executor' parameter must be one of {', '.join(map(repr, EXECUTORS))}. Got {kind!r} instead."
    )


# ---- what runs on a Ray worker -------------------------------------------------------------------
def _model_spec(model: LoadedModel) -> dict[str, Any]:
    """How a Ray worker loads the very same model: ``load_model``'s own arguments (data paths included)."""
    load = dict(model.load_spec) or {"name": model.name, "n_eval": model.data.spec.get("n_eval")}
    if load.pop("in_memory_data", False):
        raise WorkbenchError(
            f"{model.name!r} was loaded with data held in Python (a Dataset or TaskData), which Ray workers cannot "
            "load. Pass the data as a path (data='file.csv', --data) so every node reads the same file, or use "
            "executor='local'."
        )
    return {"load": load, "name": model.name, "fingerprint": model.fingerprint}


def _bench_dict(bench: BenchConfig) -> dict[str, Any]:
    return {"warmup": bench.warmup, "runs": bench.runs, "threads": bench.threads}


_WORKER_MODELS: dict[str, LoadedModel] = {}


def _worker_model(spec: dict[str, Any]) -> LoadedModel:
    from ..models.registry import load_model

    load = dict(spec["load"])
    k = json.dumps(load, sort_keys=True, default=str)
    if k not in _WORKER_MODELS:
        _WORKER_MODELS[k] = load_model(load.pop("name"), **{a: v for a, v in load.items() if v is not None})
    m = _WORKER_MODELS[k]
    if m.fingerprint != spec["fingerprint"]:
        raise WorkbenchError(
            f"The Ray worker on {socket.gethostname()} loaded {spec['name']!r} with fingerprint {m.fingerprint}, "
            f"the caller has {spec['fingerprint']}: the model or its data differ between machines. Install the "
            "same workbench and model versions, and the same data files, on every node."
        )
    return m


@contextlib.contextmanager
def _node_lock(exclusive: bool) -> Iterator[None]:
    """A lock shared by every workbench process on this node (flock on a file in the temp folder)."""
    import fcntl

    path = Path(tempfile.gettempdir()) / "workbench-latency.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _LatencyGate:
    """Hold the node lock shared while building/evaluating; exclusive while timing (the run context's
    timing hook), and record the windows in which this trial had the node to itself."""

    def __init__(self) -> None:
        self.windows: list[tuple[float, float]] = []
        self._shared = contextlib.ExitStack()

    def __enter__(self) -> _LatencyGate:
        self._shared.enter_context(_node_lock(exclusive=False))
        return self

    def __exit__(self, *exc) -> None:
        self._shared.close()

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        self._shared.close()  # give up the shared hold, wait until no other trial on this node is busy
        try:
            with _node_lock(exclusive=True):
                t0 = time.time()
                try:
                    yield
                finally:
                    self.windows.append((t0, time.time()))
        finally:
            self._shared = contextlib.ExitStack()
            self._shared.enter_context(_node_lock(exclusive=False))


def _ray_trial(spec: dict, recipe: dict | None, bench: dict, baseline: dict | None) -> dict:
    """Build and measure one candidate in a private store; return its records and artifact files."""
    from ..recipes.registry import Recipe as _Recipe

    model = _worker_model(spec)
    cfg = BenchConfig(**bench)
    with tempfile.TemporaryDirectory(prefix="wb-ray-") as d, _LatencyGate() as gate:
        ctx = RunContext(timing=gate.timing)
        store = RunStore(Path(d) / "runs.sqlite")
        t0 = time.monotonic()
        if recipe is None:
            cand = run_baseline(model, store=store, bench=cfg, ctx=ctx)
        else:
            base = store.add(Candidate.from_dict(baseline))
            cand = run_recipe(model, _Recipe.from_dict(recipe), store=store, baseline=base, bench=cfg, ctx=ctx)
            if cand.id == base.id:
                return {"candidates": [], "files": {}, "same_as_baseline": True}
        node = {
            "node": socket.gethostname(),
            "pid": os.getpid(),
            "trial_s": time.monotonic() - t0,
            "latency_windows": gate.windows,
        }
        out, files = [], {}
        for c in store.candidates():
            if baseline is not None and c.id == baseline["id"]:
                continue
            if recipe is not None and c.id == cand.id and c.artifact_path and Path(c.artifact_path).exists():
                src = Path(c.artifact_path)
                folder = src.parent if c.runtime == "onnxruntime" else None
                if folder is not None:
                    files[c.id] = {
                        "main": src.name,
                        "files": {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()},
                    }
                else:
                    files[c.id] = {"main": src.name, "files": {src.name: src.read_bytes()}}
            out.append(replace(c, notes={**c.notes, "ray": node}).to_dict())
        return {"candidates": out, "files": files}


def _import_result(result: dict, store: RunStore) -> Candidate | None:
    """Store the records a worker returned (artifacts copied beside the store); return the last one."""
    last = None
    for d in result["candidates"]:
        c = Candidate.from_dict(d)
        shipped = result["files"].get(c.id)
        if shipped:
            folder = store.artifacts_dir / c.id
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in shipped["files"].items():
                (folder / name).write_bytes(data)
            c = replace(c, artifact_path=str(folder / shipped["main"]))
        elif c.status == "intermediate":
            c = replace(c, artifact_path=None)  # built on the worker only; lineage is kept, files are not
        try:
            last = store.add(c)
        except WorkbenchError:  # already recorded (a retried import): keep the first record
            last = store.get(c.id)
    return last
