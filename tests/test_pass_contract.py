"""The contract every registered pass keeps, run over all of them (new passes join automatically).

A pass config may tune its contract run with class attributes:
- ``example()`` (classmethod): a fast, valid config (default: the config's defaults);
- ``contract_model``: "digits-cnn" (default), "minilm", or "package.module:function" returning a LoadedModel;
- ``contract_min_fidelity``: the least task fidelity (agreement / cosine to FP32) the output must keep.
"""

from __future__ import annotations

import hashlib
import importlib

import numpy as np
import pytest

import workbench as wb
from workbench.passes import PassJob, apply_pass, registered_passes

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
    outputs = wb.evaluate.predict(out.runner(), model.data.eval)
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
    assert not workdir.exists() or not any(workdir.iterdir()), "a cancelled pass left files behind"
