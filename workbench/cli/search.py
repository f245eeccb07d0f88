"""The `workbench search` command(s)."""

from __future__ import annotations

import json
import sys

from ..core.context import RunContext
from ..measure.benchmark import BenchConfig
from ..search.executors import EXECUTORS
from ..search.nas import ARCHITECTURE
from ..search.result import PREFER, TrialRecord
from ..search.run import search
from ..search.space import SearchSpace, family_names
from ..store.runstore import RunStore
from ..tasks import fmt
from ..tasks.budget import Budget
from .options import add_data_arguments, load_kwargs, print_dataset


# ---- CLI ------------------------------------------------------------------------------------------
def _cmd_search(args) -> int:
    from ..core.context import cli_reporter
    from .table import format_table

    budget = Budget(
        max_latency_ms=args.max_latency_ms,
        max_size_mb=args.max_size_mb,
        max_accuracy_drop=None if args.max_drop is None else args.max_drop / 100,
    )
    arch = {}
    if args.time_budget is not None:
        arch["architecture__time_budget_s"] = args.time_budget * 60
    if args.train_steps is not None:
        arch["architecture__train_steps"] = args.train_steps
    if (arch or args.device_table) and ARCHITECTURE not in (args.family or []):
        print(
            "error: --time-budget, --train-steps and --device-table belong to the architecture search: add "
            "--family architecture",
            file=sys.stderr,
        )
        return 2
    space = SearchSpace.default(args.family, **arch) if args.family else None
    reporter = cli_reporter(quiet=args.json)
    ctx = RunContext(on_progress=reporter)

    def on_screen(row: dict) -> None:
        if not args.json:
            reporter.close()
            p50 = f"{row['p50_ms']:.3g} ms" if row.get("p50_ms") is not None else "-"
            x = f"{row['speedup']:.2f}x" if row.get("speedup") else ""
            print(f"untrained  {row['label']:<40} {p50:>10} {x:>7}  {row.get('error', '')}", flush=True)

    def on_trial(t: TrialRecord) -> None:
        if not args.json:
            reporter.close()
            c = t.candidate
            p50 = f"{c.get('p50_ms'):.3g} ms" if c is not None and c.get("p50_ms") is not None else "-"
            print(f"trial {t.number:>3}  {t.recipe.name:<55} {p50:>10}  {t.verdict}", flush=True)

    from ..models.registry import load_model

    model = load_model(args.model, **load_kwargs(args))
    if not args.json:
        print_dataset(model)
    store = RunStore(args.store)
    try:
        res = search(
            model,
            budget,
            space,
            trials=args.trials,
            store=store,
            executor=args.executor,
            address=args.address,
            ctx=ctx,
            on_trial=on_trial,
            prefer=args.prefer,
            study_name=args.study,
            resume=not args.no_resume,
            bench=BenchConfig(threads=args.threads),
            device_table=args.device_table,
            on_screen=on_screen,
        )
    finally:
        reporter.close()
    if args.json:
        print(json.dumps(res.to_dict(), indent=2, default=str))
    else:
        rows = [
            {
                "trial": str(r["trial"]),
                "recipe": r["recipe"],
                "p50 ms": fmt(r["p50_ms"], ".3g"),
                "size MB": fmt(r["size_mb"], ".3g"),
                "accuracy": fmt(r["accuracy"], ".4f"),
                "drop pts": fmt(r["accuracy_drop"], "+.2f", 100),
                "verdict": r["verdict"][:70],
            }
            for r in res.rows()
        ]
        if res.screened:
            print()
            print(
                format_table(
                    [
                        {
                            "architecture": r["label"],
                            "untrained p50 ms": fmt(r.get("judged_p50_ms", r.get("p50_ms")), ".3g"),
                            "x baseline": fmt(r.get("speedup"), ".2f"),
                            "size MB": fmt((r.get("size_bytes") or 0) / 1e6 if "size_bytes" in r else None, ".3g"),
                            "fate": (r.get("fate") or "")[:90],
                        }
                        for r in res.screened
                    ]
                )
            )
        print()
        print(format_table(rows))
        print()
        print(res.explain())
    return 0 if res.best is not None else 1


def cli_register(sub) -> None:
    """Add ``search`` (and the sensitivity / profile / bundle commands of sibling modules) to the CLI."""
    s = sub.add_parser("search", help="find the best candidate within a device budget (Optuna, resumable)")
    s.add_argument("model", help="bundled name, Hugging Face id, local folder or .onnx file")
    s.add_argument("--max-latency-ms", type=float, default=None, help="p50 latency limit at batch 1")
    s.add_argument("--max-size-mb", type=float, default=None, help="model size limit")
    s.add_argument(
        "--max-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help="accuracy drop limit in points (0.5 = half a point)",
    )
    s.add_argument("--threads", type=int, default=None, help="inference threads on the device")
    s.add_argument("--trials", type=int, default=16, help="distinct recipes to evaluate (default 16)")
    s.add_argument(
        "--family",
        action="append",
        default=None,
        metavar="NAME",
        help=f"restrict the space to these families (repeatable): {', '.join(family_names())} "
        "('architecture' searches students of other depths and widths, on its own)",
    )
    s.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="architecture search: the whole search's wall-clock budget (default 20)",
    )
    s.add_argument(
        "--train-steps", type=int, default=None, help="architecture search: distillation steps per student (480)"
    )
    s.add_argument(
        "--device-table",
        default=None,
        metavar="JSON",
        help="architecture search: a probe bundle's latency_table.json; the latency limit is judged on it",
    )
    s.add_argument(
        "--prefer",
        choices=PREFER,
        default="auto",
        help="best = most accurate (auto with a latency limit) or fastest (auto otherwise) that fits",
    )
    s.add_argument("--executor", choices=EXECUTORS, default="local", help="where trials run (default: local)")
    s.add_argument("--address", default=None, help="Ray address: host:port, ray://host:port or auto")
    add_data_arguments(s)
    s.add_argument("--study", default=None, help="study name (default: derived from model, space and budget)")
    s.add_argument("--no-resume", action="store_true", help="start the study afresh (candidates are still reused)")
    s.add_argument("--json", action="store_true", help="print the search result as JSON")
    s.set_defaults(func=_cmd_search)
