"""The contract every registered pass keeps, run over all of them (new passes join automatically).

A pass registers when its module is imported (``workbench.sensitivity`` registers ``selective`` only
then), so the suite imports every module of the package before it collects the registry, and checks
that what it runs over is the whole registry.

A pass config may tune its contract run with class attributes:
- ``example()`` (classmethod): a fast, valid config (default: the config's defaults);
- ``contract_model``: "digits-cnn" (default), "minilm", or "package.module:function" returning a LoadedModel;
- ``contract_min_fidelity``: the least task fidelity (agreement / cosine to FP32) the output must keep.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import sys

import numpy as np
import pytest

import workbench as wb
from workbench.measure.evaluate import predict
from workbench.passes import PassJob, apply_pass, registered_passes


def _raise(name: str) -> None:
    raise  # walk_packages calls this inside the except block of a package that failed to import


def _import_every_module() -> list[str]:
    """Import every module of the workbench package; one that fails to import fails the suite."""
    names = [m.name for m in pkgutil.walk_packages(wb.__path__, "workbench.", onerror=_raise)]
    for name in names:
        importlib.import_module(name)
    return names


MODULES = _import_every_module()
PASSES = sorted(registered_passes().items())
_MODELS: dict[str, wb.LoadedModel] = {}
_ONNX: dict[str, wb.Artifact] = {}


def _model(cls, request) -> wb.LoadedModel:
    name = getattr(cls, "contract_model", "digits-cnn")
    if name == "digits-cnn":
        return request.getfixturevalue("digits_model")
    if name == "minilm":
        return request.getfixturevalue("minilm_model")
    if name not in _MODELS:
        mod, fn = name.split(":")
        _MODELS[name] = getattr(importlib.import_module(mod), fn)()
    return _MODELS[name]


def _input(cls, model, tmp_path_factory) -> wb.Artifact:
    if cls.consumes == "torch":
        return model.baseline
    if model.baseline.kind == "onnx":
        return model.baseline
    if model.fingerprint not in _ONNX:
        job = PassJob(model=model, workdir=tmp_path_factory.mktemp("export"))
        _ONNX[model.fingerprint] = apply_pass(model.baseline, wb.OnnxExport(), job)
    return _ONNX[model.fingerprint]


def _digest(art: wb.Artifact) -> str:
    h = hashlib.sha256()
    if art.kind == "torch":
        for k, v in sorted(art.module.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().float().numpy().tobytes())
    else:
        h.update(art.path.read_bytes())
    return h.hexdigest()


def _example(cls):
    return cls.example() if hasattr(cls, "example") else cls()


def _skip_without_edge_runtime(cls) -> None:
    """An edge-format pass (ExecuTorch, LiteRT) needs the optional `workbench[edge]` extra to run."""
    from workbench.core.edge_runtime import EDGE_RUNTIMES, edge_runtime_missing

    why = edge_runtime_missing(cls.produces) if cls.produces in EDGE_RUNTIMES else None
    if why:
        pytest.skip(f"{cls.kind}: {why}")


def test_suite_runs_over_every_registered_pass():
    # every module of the package was imported before the registry was read ...
    assert {"workbench.measure.sensitivity", "workbench.lm.passes"} <= set(MODULES)
    assert all(name in sys.modules for name in MODULES)
    # ... so the passes registered only on import (selective, the LM passes) are among those parametrized
    assert {"selective", "lm-onnx-export", "lm-weight-only", "torch-dynamic-int8"} <= {k for k, _ in PASSES}
    # and nothing registered since (by any module the test session imported) escapes the suite
    assert {k for k, _ in PASSES} == set(registered_passes())
    assert dict(PASSES) == registered_passes()


@pytest.mark.parametrize(("kind", "cls"), PASSES, ids=[k for k, _ in PASSES])
def test_config_json_round_trip(kind, cls):
    cfg = _example(cls)
    assert cfg.kind == kind
    assert wb.PassConfig.from_dict(cfg.to_dict()) == cfg
    assert wb.PassConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(wb.ConfigError, match="no field 'bogus'"):
        wb.PassConfig.from_dict({**cfg.to_dict(), "bogus": 1})


@pytest.mark.parametrize(("kind", "cls"), PASSES, ids=[k for k, _ in PASSES])
def test_pass_contract(kind, cls, request, tmp_path, tmp_path_factory):
    _skip_without_edge_runtime(cls)
    model = _model(cls, request)
    art = _input(cls, model, tmp_path_factory)
    before = _digest(art)
    events: list[wb.ProgressEvent] = []
    ctx = wb.RunContext(on_progress=events.append)
    out = apply_pass(art, _example(cls), PassJob(model=model, ctx=ctx, workdir=tmp_path / "out"))

    assert _digest(art) == before, "the pass mutated its input"
    assert out.kind == cls.produces
    # progress: at least one event, and never going backwards within a stage
    assert events
    for a, b in zip(events, events[1:]):
        if a.stage == b.stage:
            assert b.done >= a.done, (a, b)
    # the output runs and stays close to FP32 on the task
    outputs = predict(out.runner(), model.data.eval)
    assert np.isfinite(outputs).all() and len(outputs) == len(model.data.eval)
    m = model.task.metrics(outputs, model.data.eval.labels, model.reference_outputs())
    assert m["fidelity"] >= getattr(cls, "contract_min_fidelity", 0.9), m


@pytest.mark.parametrize(("kind", "cls"), PASSES, ids=[k for k, _ in PASSES])
def test_pass_honours_cancel(kind, cls, request, tmp_path, tmp_path_factory):
    model = _model(cls, request)
    art = _input(cls, model, tmp_path_factory)
    ctx = wb.RunContext()

    def cancel_on_first_step(ev):
        ctx.cancel()  # cancel as soon as the pass reports its first progress

    ctx.add_listener(cancel_on_first_step)
    workdir = tmp_path / "out"
    with pytest.raises(wb.CancelledError):
        apply_pass(art, _example(cls), PassJob(model=model, ctx=ctx, workdir=workdir))
    # a pass that raised (the cancel) has its folder removed by apply_pass: nothing half-written survives
    assert not workdir.exists(), f"a cancelled pass left files behind: {sorted(workdir.rglob('*'))}"
