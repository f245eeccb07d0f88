"""Knowledge distillation on real models: smaller students, accuracy kept, seeded, budgeted, cancellable."""

from __future__ import annotations

import re

import pytest

import workbench as wb
from workbench.measure.evaluate import cosine_rows, predict
from workbench.passes import PassJob, apply_pass


def _accuracy(model, art) -> float:
    out = predict(art.runner(), model.data.eval)
    return model.task.metrics(out, model.data.eval.labels, model.reference_outputs())["accuracy"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("width", 1.5), ("width", 0.0), ("student_layers", 0), ("temperature", 0.0), ("alpha", 1.2), ("steps", -1)],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(wb.ConfigError, match=f"'{field}' parameter of Distill must be"):
        wb.Distill(**{field: value})


def test_student_larger_than_teacher_is_refused(minilm_model):
    with pytest.raises(
        wb.ConfigError,
        match=r"'student_layers' parameter of Distill must be an int in \[1, 6\].*"
        r"cannot be larger than its teacher.*Got 8",
    ):
        apply_pass(minilm_model.baseline, wb.Distill(student_layers=8, steps=1), PassJob(model=minilm_model))


def test_layer_count_on_a_cnn_is_refused(digits_model):
    with pytest.raises(wb.ConfigError, match="student_layers.*has no layer stack.*width"):
        apply_pass(digits_model.baseline, wb.Distill(student_layers=2), PassJob(model=digits_model))


def test_digits_student_is_smaller_accurate_and_reproducible(digits_model):
    cfg = wb.Distill(width=0.5, steps=80, batch_size=32, seed=3)
    events: list[wb.ProgressEvent] = []
    a = apply_pass(digits_model.baseline, cfg, PassJob(model=digits_model, ctx=wb.RunContext(events.append)))
    b = apply_pass(digits_model.baseline, cfg, PassJob(model=digits_model))
    facts = a.meta["distilled"]
    assert facts["params_after"] == a.param_count() < 0.3 * digits_model.baseline.param_count()
    assert facts["steps_done"] == 80 and facts["stopped_by"] == "steps"
    steps = [e.message for e in events if e.message.startswith("step ")]
    assert len(steps) == 80 and re.fullmatch(r"step 1 loss \d+\.\d{3}", steps[0]) and steps[-1].startswith("step 80 ")
    base_acc = _accuracy(digits_model, digits_model.baseline)
    acc = _accuracy(digits_model, a)
    assert acc >= base_acc - 0.03
    assert _accuracy(digits_model, b) == acc, "the same seed must give the same accuracy"


def test_time_budget_stops_training(digits_model):
    out = apply_pass(
        digits_model.baseline, wb.Distill(width=0.5, steps=100_000, max_seconds=0.5), PassJob(model=digits_model)
    )
    facts = out.meta["distilled"]
    assert facts["stopped_by"] == "max_seconds" and 0 < facts["steps_done"] < 100_000


def test_cancel_during_training_leaves_nothing(digits_model, tmp_path):
    ctx = wb.RunContext()
    ctx.add_listener(lambda ev: ctx.cancel() if ev.message.startswith("step 3 ") else None)
    workdir = tmp_path / "out"
    with pytest.raises(wb.CancelledError):
        apply_pass(
            digits_model.baseline,
            wb.Distill(width=0.5, steps=50),
            PassJob(model=digits_model, ctx=ctx, workdir=workdir),
        )
    assert ctx.events[-1].message.startswith("step 3 ")
    assert not workdir.exists(), "the cancelled pass left its folder behind"  # apply_pass removes it on failure


def test_minilm_student_keeps_fewer_layers_and_runs(minilm_model):
    teacher = minilm_model.baseline
    cfg = wb.Distill(student_layers=2, steps=3, batch_size=4, hidden_weight=1.0)
    out = apply_pass(teacher, cfg, PassJob(model=minilm_model))
    facts = out.meta["distilled"]
    assert facts["layers_kept"] == [0, 5] and facts["steps_done"] == 3
    assert len(out.module.encoder.encoder.layer) == 2 and out.module.encoder.config.num_hidden_layers == 2
    assert len(teacher.module.encoder.encoder.layer) == 6, "the teacher was mutated"
    assert facts["params_after"] < facts["params_teacher"] - 3_000_000
    emb = predict(out.runner(), minilm_model.data.eval.take(slice(0, 8)))
    assert emb.shape == (8, 384)
    # even 3 steps from teacher layers 0 and 5 keep the embedding pointing roughly the same way
    ref = minilm_model.reference_outputs()[:8]
    assert cosine_rows(emb, ref).mean() > 0.3
