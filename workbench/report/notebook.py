"""Reports: run the report notebook with papermill, then freeze it into one self-contained HTML file.

The template (``workbench/templates/report.ipynb``) only calls the library: optimize (reusing what the
run store already holds), then the section builders of :mod:`workbench.report_sections` — the comparison
table, each candidate's recipe, static chart images, the budget verdict, what a search found (its Pareto
front, best candidate and rejections) and the environment fingerprint. A causal LM gets perplexity with its
CI, tokens/s, prefill time, a perplexity-vs-tokens/s chart and its generation samples. The HTML reads
offline: charts are PNG images embedded as ``data:`` URIs (vl-convert, no browser), and no CDN script is
referenced.

A failing cell still yields a report: it opens with which cell failed and why, and ``ok`` is False.

>>> r = run_report("digits-cnn", {"n_eval": 200}, "reports/digits.html")   # doctest: +SKIP
>>> r.ok, r.html_path.name
(True, 'digits.html')
"""

from __future__ import annotations

import ast
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.context import RunContext
from ..core.errors import ConfigError

__all__ = ["ReportResult", "run_report", "template_parameters", "notebook_to_html", "DEFAULT_TEMPLATE"]

#: the report notebook shipped with the package
DEFAULT_TEMPLATE = Path(__file__).with_name("templates") / "report.ipynb"

# the nbconvert "lab" page minus the script tags that load require.js and MathJax from a CDN: a report
# has no widgets and no LaTeX, and must open the same on a laptop with no network
_HTML_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class ReportResult:
    """What a report run produced. ``failed_cell`` names the cell that raised (None when ``ok``)."""

    html_path: Path
    notebook_path: Path
    ok: bool
    error: str | None = None  # "ExceptionName: message" of the failing cell (or of the run itself)
    failed_cell: str | None = None  # e.g. "In [4] (cell 7) in section 'Candidates': cands = wb.optimize(...)"
    elapsed_s: float = 0.0


def template_parameters(template: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """The template's parameters: name -> {"default": value, "type": str, "help": str}.

    >>> template_parameters()["n_eval"]["help"]   # doctest: +SKIP
    'eval examples to score; None = the whole eval split'
    """
    import papermill

    path = _template_path(template)
    out = {}
    for name, p in papermill.inspect_notebook(str(path)).items():
        try:
            default = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError):
            default = p["default"]
        out[name] = {"default": default, "type": str(p["inferred_type_name"]).strip("'\""), "help": p["help"]}
    return out


def _template_path(template: str | os.PathLike[str] | None) -> Path:
    path = Path(template) if template is not None else DEFAULT_TEMPLATE
    if not path.is_file():
        raise ConfigError(f"The 'template' parameter of run_report must be an existing .ipynb file. Got {str(path)!r}.")
    return path


def _coerce(name: str, value: Any, spec: dict[str, Any]) -> Any:
    """Bring a value to the template default's type (CLI values arrive as strings)."""
    default, kind = spec["default"], spec["type"]
    if isinstance(value, str) and (isinstance(default, list) or kind.startswith("list")):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, int) and not isinstance(value, bool) and ("float" in kind or isinstance(default, float)):
        return float(value)
    if isinstance(value, Path):
        value = str(value)
    if not _type_ok(value, kind):
        raise ConfigError(
            f"The report parameter {name!r} must be {kind} ({spec.get('help') or 'see the parameters cell'}). "
            f"Got {value!r} instead."
        )
    return value


_TYPE_CHECKS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def _type_ok(value: Any, kind: str) -> bool:
    """``value`` fits the template's annotation (``int``, ``Optional[float]``, ``list``...; others: anything)."""
    k = kind.replace(" ", "")
    optional = k.startswith("Optional[") and k.endswith("]")
    if optional:
        k = k[len("Optional[") : -1]
    if value is None:
        return optional or k not in _TYPE_CHECKS
    check = _TYPE_CHECKS.get(k.split("[", 1)[0].lower())
    return True if check is None else check(value)


def _check_parameters(model: str, parameters: dict[str, Any], spec: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"The 'model' parameter of run_report must be a non-empty string. Got {model!r}.")
    if "model" in parameters and parameters["model"] != model:
        raise ConfigError(
            f"The 'parameters' of run_report name a model ({parameters['model']!r}) besides the "
            f"'model' argument ({model!r}): give it once."
        )
    unknown = sorted(set(parameters) - set(spec))
    if unknown:
        raise ConfigError(f"Unknown report parameter {unknown[0]!r}. Valid parameters: {', '.join(sorted(spec))}.")
    out = {k: _coerce(k, v, spec[k]) for k, v in parameters.items()}
    out["model"] = model
    try:
        json.dumps(out)
    except TypeError as e:
        raise ConfigError(f"Report parameters must be plain values (str, number, bool, None, list): {e}.") from None
    return out


def run_report(
    model: str,
    parameters: dict[str, Any] | None = None,
    output_html: str | os.PathLike[str] | None = None,
    *,
    template: str | os.PathLike[str] | None = None,
    timeout: float | None = 1800,
    include_code: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> ReportResult:
    """Execute the report notebook for ``model`` and write the executed ``.ipynb`` and a self-contained HTML.

    ``parameters`` override the template's ``parameters`` cell (see :func:`template_parameters`);
    ``output_html`` defaults to ``reports/<model>.html``; the notebook lands beside it. ``timeout`` is
    per cell, in seconds. The kernel is ``python3`` run by this interpreter, in ``cwd`` (default: the
    current folder, so the default run store is the one the CLI uses). ``ctx`` gets a progress step per cell
    (the section it belongs to as the message), so a command shows where the report is.

    >>> r = run_report("digits-cnn", {"recipes": ["ort-int8-dynamic"], "n_eval": 200})   # doctest: +SKIP
    >>> r.ok
    True
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = _template_path(template)
    params = _check_parameters(model, dict(parameters or {}), template_parameters(path))
    safe = re.sub(r"[^\w.-]+", "_", model).strip("_") or "model"
    html_path = Path(output_html) if output_html is not None else Path("reports") / f"{safe}.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"The 'output_html' parameter of run_report must end in .html. Got {str(html_path)!r}.")
    nb_path = html_path.with_suffix(".ipynb")
    try:
        html_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"Cannot create the report folder {html_path.parent} ({e.strerror or e}): pick another output path (-o)."
        ) from None

    t0 = time.monotonic()
    error = failed = None
    try:
        papermill.execute_notebook(
            str(path),
            str(nb_path),
            parameters=params,
            kernel_name="python3",
            language="python",
            progress_bar=False,
            log_output=False,
            cwd=str(cwd or Path.cwd()),
            execution_timeout=timeout,
            engine_name=_progress_engine(),
            workbench_ctx=ctx,
            workbench_stage=f"report {model}",
        )
    except PapermillExecutionError as e:
        error = f"{e.ename}: {_ANSI.sub('', str(e.evalue))}"
    except Exception as e:
        # a dead kernel or a cell timeout: still a report, saying so, when the notebook was written
        error = f"{type(e).__name__}: {_ANSI.sub('', str(e)).strip()}"
        if not nb_path.exists():
            raise ConfigError(f"The report notebook could not run: {error}") from e

    nb = _read(nb_path)
    if error is not None:
        failed = _describe_failed_cell(nb)
        _prepend_failure(nb, error, failed)
        _write(nb, nb_path)
    nb.metadata["title"] = f"workbench report: {model}"
    html_path.write_text(notebook_to_html(nb, include_code=include_code), encoding="utf-8")
    return ReportResult(
        html_path=html_path.resolve(),
        notebook_path=nb_path.resolve(),
        ok=error is None,
        error=error,
        failed_cell=failed,
        elapsed_s=time.monotonic() - t0,
    )


def _progress_engine() -> str:
    """Register (once) and name papermill's nbclient engine with a progress step per cell."""
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.exceptions import PapermillException

    try:
        papermill_engines.get_engine("workbench")
        return "workbench"
    except PapermillException:
        pass

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, workbench_ctx=None, workbench_stage="report", **kw):
            if workbench_ctx is not None:
                cells = nb_man.nb.cells
                heading = {}
                current = ""
                for i, c in enumerate(cells):
                    if c.cell_type == "markdown" and c.source.lstrip().startswith("#"):
                        current = c.source.lstrip().splitlines()[0].lstrip("#").strip()
                    heading[i] = current
                workbench_ctx.begin(workbench_stage, total=len(cells))
                start, complete = nb_man.cell_start, nb_man.cell_complete

                def cell_start(cell, cell_index=None, **k):
                    where = heading.get(cell_index) if cell_index is not None else None
                    workbench_ctx.step(0, message=where or "")
                    return start(cell, cell_index, **k)

                def cell_complete(cell, cell_index=None, **k):
                    workbench_ctx.step(1)
                    return complete(cell, cell_index, **k)

                nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
            return super().execute_managed_notebook(nb_man, kernel_name, **kw)

    papermill_engines.register("workbench", ProgressEngine)
    return "workbench"


def _read(path: Path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _write(nb, path: Path) -> None:
    import nbformat

    nbformat.write(nb, str(path))


def _describe_failed_cell(nb) -> str | None:
    """Name the first cell with an error output: ``In [n] (cell i) in section 'Heading': first code line``
    (i indexes the executed notebook, which has papermill's injected-parameters cell)."""
    section = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            heads = [ln.lstrip("#").strip() for ln in cell.source.splitlines() if ln.startswith("#")]
            section = heads[-1] if heads else section
            continue
        if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
            where = (f"In [{cell.execution_count}] " if cell.get("execution_count") else "") + f"(cell {i})"
            return where + (f" in section {section!r}" if section else "") + (f": {first}" if first else "")
    return None


def _prepend_failure(nb, error: str, failed: str | None) -> None:
    import nbformat

    source = next(
        (
            c.source
            for c in nb.cells
            if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ),
        None,
    )
    text = [
        "## Report failed",
        "",
        f"**Failed cell:** {failed or 'unknown (the kernel stopped)'}",
        "",
        f"**Error:** `{error.splitlines()[0] if error else ''}`",
    ]
    if len(error.splitlines()) > 1:
        text += ["", "```", *error.splitlines()[1:], "```"]
    if source:
        text += ["", "The failing code:", "", "```python", source, "```"]
    text += ["", "Everything before that cell ran; its output follows. The traceback is under the failed cell."]
    cell = nbformat.v4.new_markdown_cell("\n".join(text))
    cell.metadata["tags"] = ["workbench-report-error"]
    nb.cells.insert(0, cell)


def notebook_to_html(nb, *, include_code: bool = False) -> str:
    """An executed notebook (node or path) as one HTML page that needs no network: images embedded,
    no CDN scripts, stderr noise (warnings, progress bars) left out, code hidden unless ``include_code``."""
    import copy

    import jinja2
    from nbconvert import HTMLExporter

    if isinstance(nb, (str, os.PathLike)):
        nb = _read(Path(nb))
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            errored = any(o.get("output_type") == "error" for o in cell.outputs)
            cell.outputs = [
                o
                for o in cell.outputs
                if errored or not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
    exporter = HTMLExporter(
        template_name="lab",
        template_file="workbench_report.html.j2",
        extra_loaders=[jinja2.DictLoader({"workbench_report.html.j2": _HTML_TEMPLATE})],
        exclude_input=not include_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    html, _ = exporter.from_notebook_node(nb)
    return html
