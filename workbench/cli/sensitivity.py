"""The `workbench sensitivity` command(s)."""

from __future__ import annotations

from pathlib import Path

from ..measure.sensitivity import TECHNIQUES, sensitivity
from .options import add_data_arguments, load_kwargs, print_dataset


# ---- CLI ---------------------------------------------------------------------------------------------
def _cmd_sensitivity(args) -> int:
    import json

    from ..models.registry import load_model
    from .table import format_table

    model = load_model(args.model, **load_kwargs(args))
    if not args.json:
        print_dataset(model)
    from ..core.context import RunContext, cli_reporter

    reporter = cli_reporter(quiet=args.json)
    try:
        res = sensitivity(
            model, args.technique or ["int8"], by=args.by, threads=args.threads, ctx=RunContext(on_progress=reporter)
        )
    finally:
        reporter.close()
    if args.json:
        print(
            json.dumps(
                {"model": res.model, "by": res.by, "baseline": res.baseline, "rows": res.rows}, indent=2, default=str
            )
        )
    else:
        print(
            format_table(
                [
                    {
                        "technique": r["technique"],
                        res.by: r["layer"],
                        "ops": r["op_types"],
                        "params": str(r["params"]),
                        "accuracy": "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}",
                        "drop pts": f"{100 * r['accuracy_drop']:+.2f}",
                        "fidelity": "-" if r["fidelity"] is None else f"{r['fidelity']:.4f}",
                    }
                    for r in res.rows
                ]
            )
        )
    if args.chart:
        from ..report.charts import to_svg

        Path(args.chart).parent.mkdir(parents=True, exist_ok=True)
        Path(args.chart).write_text(to_svg(res.chart()))
        print(f"heat map written to {args.chart}")
    return 0


def cli_register(sub) -> None:
    s = sub.add_parser("sensitivity", help="per-layer sensitivity to int8 / int4 / pruning (table + heat map)")
    s.add_argument("model")
    s.add_argument("--technique", action="append", choices=TECHNIQUES, help="repeatable (default: int8)")
    s.add_argument("--by", choices=("layer", "block"), default="layer")
    s.add_argument("--threads", type=int, default=None)
    add_data_arguments(s)
    s.add_argument("--chart", default=None, metavar="FILE.svg", help="write the heat map as SVG")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_sensitivity)
