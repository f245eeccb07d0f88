"""The `workbench report` command(s)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from ..report.notebook import run_report
from .options import add_data_arguments, load_kwargs


def _cmd_report(args) -> int:
    import sys

    params: dict[str, Any] = {}
    for name, value in args.param or []:
        params[name] = parse_value(value)
    if args.store and "store" not in params:
        params["store"] = args.store
    for key in ("data", "eval_data"):  # absolute: the report runs in its own kernel
        value = getattr(args, key, None)
        if value is not None:
            params[key] = str(Path(value).expanduser().resolve()) if Path(value).expanduser().exists() else value
    if args.task is not None:
        params["task"] = args.task
    options = {k: v for k, v in load_kwargs(args).items() if k not in ("data", "eval_data", "task", "n_eval")}
    if options:
        params["data_options"] = {**params.get("data_options", {}), **options}
    from ..core.context import RunContext, cli_reporter

    print(f"running the report for {args.model} (papermill, headless)...", file=sys.stderr)
    reporter = cli_reporter()
    try:
        res = run_report(
            args.model,
            params,
            args.output,
            template=args.template,
            timeout=args.timeout,
            include_code=args.show_code,
            ctx=RunContext(on_progress=reporter),
        )
    finally:
        reporter.close()
    if not res.ok:
        print(f"workbench: report failed at {res.failed_cell}: {res.error}", file=sys.stderr)
        print(f"report (with the error) written to {res.html_path}", file=sys.stderr)
        return 1
    print(f"report written to {res.html_path} (notebook: {res.notebook_path}, {res.elapsed_s:.0f} s)")
    return 0


def cli_register(subparsers) -> None:
    """Add ``workbench report MODEL [-p NAME VALUE ...] [-o OUT.html]``."""
    s = subparsers.add_parser(
        "report",
        help="run the report notebook (papermill) and write a self-contained HTML report",
        description="Runs the report notebook for MODEL headless and writes OUT.html plus the executed "
        "OUT.ipynb. Exit 1 if a cell failed (the report then says which and why).",
    )
    s.add_argument("model", help="bundled name, Hugging Face id, local folder or .onnx file")
    s.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="override a template parameter, e.g. -p n_eval 200 -p recipes ort-fp32,bf16 "
        "-p max_latency_ms 5 (values: JSON or plain strings; lists comma-separated)",
    )
    s.add_argument("-o", "--output", default=None, help="HTML file to write (default: reports/MODEL.html)")
    s.add_argument("--template", default=None, help="another report notebook (default: the bundled one)")
    s.add_argument("--timeout", type=float, default=1800, help="seconds allowed per cell (default 1800)")
    s.add_argument("--show-code", action="store_true", help="keep the code cells in the HTML")
    add_data_arguments(s, n_eval=False)
    s.set_defaults(func=_cmd_report)


# ---- CLI --------------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A -p value: JSON (numbers, true/false/null, lists) or Python literals; anything else is a string."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError):
            pass
    return text
