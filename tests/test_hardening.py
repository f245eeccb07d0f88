"""Bad arguments get the template error (parameter, value, valid choices), never a silent wrong result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import workbench as wb


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"n_eval": "10"}, "'n_eval' parameter of load_model must be a positive int"),
        ({"n_eval": 0}, "'n_eval' parameter of load_model must be a positive int"),
        ({"n_eval": True}, "'n_eval' parameter of load_model must be a positive int"),
        ({"seed": -1}, "'seed' parameter of load_model must be an int >= 0"),
    ],
)
def test_load_model_checks_its_numbers(kw, words):
    with pytest.raises(wb.ConfigError) as e:
        wb.load_model("digits-cnn", **kw)
    assert words in str(e.value)


@pytest.mark.parametrize(
    "name, kw", [("digits-cnn", {"n_evl": 10}), ("sensor-cnn", {"epoch": 2}), ("smollm2", {"seqlen": 8})]
)
def test_unknown_load_model_keywords_are_refused_with_the_valid_ones(name, kw):
    with pytest.raises(wb.ConfigError) as e:
        wb.load_model(name, **kw)
    msg = str(e.value)
    assert f"unknown option(s) {next(iter(kw))!r}" in msg and "text_column" in msg, msg
    if name == "sensor-cnn":
        assert "epochs" in msg  # its own option is listed
    if name == "smollm2":
        assert "seq_len" in msg  # the options of the causal-LM loader it hands them to


def test_an_n_eval_larger_than_the_data_says_what_it_used(tmp_path, cli):
    with pytest.warns(wb.DataNotice, match="the eval split has 40 examples: all 40 are scored"):
        m = wb.load_model("sensor-cnn", n_eval=5000)
    assert len(m.data.eval) == 40
    r = cli("optimize", "sensor-cnn", "--n-eval", "5000", "--recipe", "ort-fp32", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "note: n_eval=5000 was asked for, but the eval split has 40 examples" in r.stderr


@pytest.mark.parametrize("path", [42, "", "   "])
def test_a_store_path_that_is_not_a_path_is_refused(path):
    with pytest.raises(wb.StoreError) as e:
        wb.RunStore(path)
    assert "non-empty path" in str(e.value) and repr(path) in str(e.value)


def test_load_model_takes_a_path_object(tmp_path):
    import torch

    net = torch.nn.Linear(3, 2)
    f = tmp_path / "lin.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3),), str(f), input_names=["x"], dynamo=False)
    m = wb.load_model(Path(f), n_eval=4)
    assert m.name == "lin" and len(m.data.eval) == 4


def test_one_recipe_name_where_a_list_is_expected_is_that_list():
    cands = wb.optimize("digits-cnn", "ort-fp32", store=":memory:", n_eval=30, bench=wb.BenchConfig(warmup=1, runs=3))
    assert [c.recipe_name for c in cands] == ["baseline", "ort-fp32"]


def test_load_options_with_a_loaded_model_are_refused():
    m = wb.load_model("digits-cnn", n_eval=30)
    with pytest.raises(wb.ConfigError) as e:
        wb.optimize(m, [], store=":memory:", n_eval=10)
    assert "n_eval" in str(e.value) and "already loaded" in str(e.value)


@pytest.mark.parametrize(
    "args, words",
    [
        (["optimize", "digits-cnn", "--threads", str((os.cpu_count() or 1) + 997)], "CPU cores of this machine"),
        (["optimize", "digits-cnn", "--n-eval", "0"], "must be a positive int"),
        (["--store", "", "optimize", "digits-cnn"], "non-empty path"),
    ],
)
def test_cli_numbers_and_paths_are_checked(args, words, tmp_path, cli):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert words in r.stderr and "Traceback" not in r.stderr
    if (tmp_path / "runs.sqlite").exists():  # nothing was measured
        assert wb.RunStore(tmp_path / "runs.sqlite").candidates() == []


def test_optimize_without_recipes_runs_the_default_set():
    """`workbench optimize MODEL` (and make demo) with no --recipe: the task's defaults, else DEFAULT_RECIPES, less
    those known to be slower than FP32 on this CPU."""
    from workbench.recipes.advice import default_recipes_here

    cands = wb.optimize("digits-cnn", store=":memory:", n_eval=30, bench=wb.BenchConfig(warmup=1, runs=3))
    assert [c.recipe_name for c in cands] == ["baseline", *default_recipes_here(wb.DEFAULT_RECIPES)[0]]
    assert all(c.status in ("ok", "degraded") for c in cands), [(c.recipe_name, c.error) for c in cands]


# ---- nothing recorded is modified by a later run ----------------------------------------------------------
def _intermediates(store: wb.RunStore, model: str) -> list[wb.Candidate]:
    return [c for c in store.candidates(model, include_intermediate=True) if c.status == "intermediate"]


def _folder_state(path: str) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in Path(path).parent.iterdir()}


def test_recorded_artifacts_are_read_only_and_never_touched_by_later_passes(tmp_path):
    from workbench.optimize import artifact_intact

    store = wb.RunStore(tmp_path / "runs.sqlite")
    bench = wb.BenchConfig(warmup=1, runs=3)
    wb.optimize("digits-cnn", ["ort-int8-dynamic"], store=store, n_eval=30, bench=bench)
    inter = _intermediates(store, "digits-cnn")
    assert inter, "the export and fusion steps are recorded as intermediates"
    before = {c.id: _folder_state(c.artifact_path) for c in inter}
    for c in inter:
        for p in Path(c.artifact_path).parent.iterdir():
            assert not p.stat().st_mode & 0o222, f"{p} is writable"
    # a second recipe on the same stored intermediates: ONNX Runtime's quantizer writes scratch files beside
    # its input; they must land in a private folder, not in the recorded one
    wb.optimize("digits-cnn", ["ort-int8-dynamic-per-tensor"], store=store, n_eval=30, bench=bench)
    for c in inter:
        assert _folder_state(c.artifact_path) == before[c.id]
        assert artifact_intact(c)


def test_an_altered_artifact_is_made_again_not_reused(tmp_path):
    from workbench.optimize import artifact_intact

    store = wb.RunStore(tmp_path / "runs.sqlite")
    bench = wb.BenchConfig(warmup=1, runs=3)
    _, first = wb.optimize("digits-cnn", ["ort-fp32"], store=store, n_eval=30, bench=bench)
    f = Path(first.artifact_path)
    f.chmod(0o644)
    with open(f, "r+b") as fh:  # truncate the recorded model: a full disk or a bad copy
        fh.truncate(f.stat().st_size // 2)
    assert not artifact_intact(first)
    _, again = wb.optimize("digits-cnn", ["ort-fp32"], store=store, n_eval=30, bench=bench)
    assert again.id != first.id and again.ok and artifact_intact(again)


def test_stale_work_folders_of_killed_runs_are_cleaned_at_the_next_start(tmp_path):
    store = wb.RunStore(tmp_path / "runs.sqlite")
    store.artifacts_dir.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = store.artifacts_dir / f".tmp-abc123-{int(dead.stdout)}"
    live = store.artifacts_dir / f".tmp-def456-{os.getpid()}"
    for d in (stale, live):
        d.mkdir()
        (d / "model.onnx").write_bytes(b"half written")
    wb.RunStore(tmp_path / "runs.sqlite")
    assert not stale.exists() and live.exists()


_WORKER = """
import sys
from pathlib import Path
import workbench as wb
from workbench.passes import PassJob, apply_pass

store = wb.RunStore(sys.argv[1])
(fused,) = [c for c in store.candidates("digits-cnn", include_intermediate=True)
            if c.status == "intermediate" and c.runtime == "onnxruntime" and len(c.recipe["steps"]) == 2]
model = wb.load_model("digits-cnn", n_eval=20)
art = wb.onnx_artifact(Path(fused.artifact_path))
failed = 0
for i in range(int(sys.argv[2])):  # quantize from the very same stored file, as fast as possible
    cfg = wb.DynamicInt8(per_channel=bool(i % 2))
    try:
        apply_pass(art, cfg, PassJob(model=model))
    except Exception as e:
        failed += 1
        print("failed", type(e).__name__, e)
print("failed", failed)
"""


def test_processes_reusing_one_stored_intermediate_do_not_race(tmp_path):
    """Three processes quantize from one stored fused graph at once, 40 times each: ONNX Runtime's scratch file
    beside the input used to collide (1 in 75 CLI runs failed), and could stay in the recorded folder."""
    store_path = tmp_path / "runs.sqlite"
    wb.optimize("digits-cnn", ["ort-int8-dynamic"], store=store_path, n_eval=20, bench=wb.BenchConfig(warmup=0, runs=1))
    store = wb.RunStore(store_path)
    before = {c.id: _folder_state(c.artifact_path) for c in _intermediates(store, "digits-cnn")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(store_path), "40"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
        assert out.decode().strip().endswith("failed 0"), out.decode()[-2000:]
    for c in _intermediates(wb.RunStore(store_path), "digits-cnn"):
        assert _folder_state(c.artifact_path) == before[c.id]
        assert not any("-inferred" in n for n in before[c.id])


# ---- no raw tracebacks from user input ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> Path:
    import shutil

    from transformers import BertConfig, BertModel

    from workbench.models.hf import minilm_path

    d = tmp_path_factory.mktemp("bad")
    cfg = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(cfg).save_pretrained(d / "no-tokenizer")  # config and weights, no tokenizer files
    shutil.copytree(minilm_path(), d / "garbage-weights")
    for f in (d / "garbage-weights").glob("*.safetensors"):
        f.write_bytes(b"\x00not safetensors" * 64)
    (d / "binary.json").write_bytes(bytes(range(256)))
    (d / "folder.json").mkdir()
    (d / "a_file").write_text("x")
    return d


@pytest.mark.parametrize(
    "args, words",
    [
        (["optimize", "{d}/no-tokenizer", "--recipe", "ort-fp32"], "has no usable tokenizer"),
        (["optimize", "{d}/garbage-weights", "--recipe", "ort-fp32"], "Cannot read the weights"),
        (["optimize", "digits-cnn", "--recipe", "{d}/binary.json"], "is not a text file"),
        (["optimize", "digits-cnn", "--recipe", "{d}/folder.json"], "is a folder, not a recipe file"),
        (["report", "digits-cnn", "-o", "{d}/a_file/report.html"], "Cannot create the report folder"),
        (["report", "digits-cnn", "-p", "n_eval", "abc"], "'n_eval' must be Optional[int]"),
    ],
)
def test_bad_user_input_is_one_line_not_a_traceback(args, words, bad_inputs, tmp_path, cli):
    r = cli(*[a.format(d=bad_inputs) for a in args], cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_module_whose_forward_raises_is_a_failed_baseline():
    import numpy as np
    import torch

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)

        def forward(self, x):
            raise RuntimeError("shape mismatch in my layer")

    split = wb.Split({"x": np.zeros((8, 4), np.float32)}, np.zeros(8, np.int64))
    m = wb.from_module(Broken(), wb.TaskData(None, split, split), name="broken")
    (base,) = wb.optimize(m, [], store=":memory:", bench=wb.BenchConfig(warmup=1, runs=3))
    assert base.status == "failed" and "shape mismatch in my layer" in base.error and "ModelRunError" in base.error


def test_from_module_with_an_unknown_task_names_the_valid_ones():
    import numpy as np
    import torch

    split = wb.Split({"x": np.zeros((4, 3), np.float32)})
    with pytest.raises(wb.WorkbenchError) as e:
        wb.from_module(torch.nn.Linear(3, 2), wb.TaskData(None, split, split), task="regression")
    assert "'regression'" in str(e.value) and "'classification'" in str(e.value)


def test_messages_speak_english():
    with pytest.raises(wb.UnknownNameError) as e:
        wb.PassConfig.from_dict({"kind": "no-such-pass"})
    assert "Known passes:" in str(e.value)
    with pytest.raises(wb.RecipeError) as e:
        wb.Recipe("x", (wb.DynamicInt8(),), "").validate_for("torch")
    assert "needs an ONNX model" in str(e.value) and "a onnx" not in str(e.value)
