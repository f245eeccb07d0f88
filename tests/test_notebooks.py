"""Every notebook in notebooks/ runs under papermill, headless, with small parameters, in a real kernel."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
#: the workshop notebooks (quickstart.ipynb, the dashboard, is another panel's; it only has to run)
TECHNIQUES = ("quantization", "pruning", "distillation", "export_and_deploy")

# small settings: digits-cnn (loads in < 1 s), few examples, few timing runs, short training
SMALL = {
    "model": "digits-cnn",
    "n_eval": 100,
    "bench_warmup": 1,
    "bench_runs": 3,
    "calibration_samples": 16,
    "thread_counts": [1, 2],
    "threads": 2,
    "deploy_examples": 32,
    "finetune_steps": 30,  # enough for structured pruning of digits-cnn to recover within the 5-point rule
    "distill_steps": 20,
    "sparsities": [0.5, 0.8],
    "student_layers": None,
    "student_width": 0.5,
}
#: what each notebook's outputs must show (the lesson worked, not just "no exception")
EXPECT = {
    "quantization": [r"Best fit: \S+|Nothing fits this budget", r"int4-weight-only", r"static-int8-minmax-16"],
    "export_and_deploy": [r"same answer as FP32 PyTorch: (9\d|100)\.\d\d%", r"\d+ nodes, \d+ weight tensors"],
    "pruning": [
        r"'sparsity reached': 0\.5",
        r"'sparsity reached': 0\.8",
        r"parameters [\d,]+ -> [\d,]+ \(\d+% removed\)",
        r"structured-int8 \[ok\]",
    ],
    "distillation": [r"'steps_done': 20", r"student-int8: ok", r"'width': 0\.5"],
}


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _outputs(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts.append(
                o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", "")
            )
    return "\n".join(parts)


def test_the_workshop_notebooks_exist():
    assert {p.stem for p in ALL} >= {"quantization", "export_and_deploy"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"  # papermill needs no -k
    first = nb.cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", [])
    for src in _code(nb):
        tree = ast.parse("\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))))
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defs, f"{path.name}: notebooks compose library calls; found def/class {defs[0].name!r}"


@pytest.mark.parametrize("path", [p for p in ALL if p.stem in TECHNIQUES], ids=lambda p: p.stem)
def test_workshop_notebook_explains_every_knob(path):
    params = papermill.inspect_notebook(str(path))
    assert params, f"{path.name}: papermill sees no parameters"
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for name, p in params.items():
        assert p["inferred_type_name"] != "None", f"{path.name}: parameter {name!r} has no type"
        assert len(p["help"]) > 15, f"{path.name}: parameter {name!r} has no explaining comment"
        assert f"`{name}`" in markdown, f"{path.name}: no markdown cell explains the knob {name!r}"
    assert len(markdown) > 2000  # it teaches, it does not just run


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_executes_with_small_parameters(path, tmp_path):
    accepted = papermill.inspect_notebook(str(path))
    params = {k: v for k, v in SMALL.items() if k in accepted}
    for key in ("store", "store_path"):
        if key in accepted:
            params[key] = str(tmp_path / "runs.sqlite")
    out = tmp_path / path.name
    # cwd=tmp_path: default stores and report folders land in the test's own folder
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=params,
        kernel_name="python3",
        language="python",
        progress_bar=False,
        cwd=str(tmp_path),
        execution_timeout=300,
    )
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = _outputs(nb)
    for pattern in EXPECT.get(path.stem, []):
        assert re.search(pattern, text), f"{path.name}: no output matches {pattern!r}"
