"""The ``workbench`` command line.

    workbench models
    workbench recipes
    workbench optimize MODEL [--recipe NAME|FILE ...] [--threads N] [--json]
    workbench runs [--model M] [--json]

The other subcommands (report, search, sensitivity, profile, bundle) live beside this module, one
module each with its ``cli_register(subparsers)``.
Errors print one line naming the problem and exit 2; nothing recorded is lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from ..core.errors import DataNotice, WorkbenchError
from .options import add_data_arguments, load_kwargs, print_dataset
from .table import format_table

__all__ = ["main", "format_table", "candidate_rows"]


def candidate_rows(cands) -> list[dict[str, str]]:
    """The table rows of these candidates, in their task's columns."""
    from ..tasks import tasks_of

    return tasks_of(list(cands)).table_rows(list(cands))


def _cmd_models(args) -> int:
    from ..models.registry import list_models
    from ..tasks import fmt

    infos = list_models()
    if args.json:
        print(json.dumps([i.__dict__ for i in infos], indent=2))
        return 0
    rows = [
        {
            "name": i.name,
            "task": i.task,
            "params": f"{i.params / 1e6:.2f} M" if i.params else "-",
            "size MB": fmt(i.size_mb, ".1f"),
            "source": i.source,
        }
        for i in infos
    ]
    print(format_table(rows))
    print("\nAlso: any Hugging Face id (org/name) or local folder, and any .onnx file.")
    print(
        "Your own data: --data FILE|FOLDER [--eval-data FILE] [--task KIND] [--text-column C --label-column C ...] "
        "(workbench optimize --help)."
    )
    return 0


def _cmd_recipes(args) -> int:
    from ..core.env import fingerprint
    from ..recipes.advice import cpu_summary, default_recipes_here, recipe_advice
    from ..recipes.registry import DEFAULT_RECIPES, list_recipes

    recipes = list_recipes()
    kept, skipped = default_recipes_here(DEFAULT_RECIPES)
    notes = {r.name: "; ".join(a.text for a in recipe_advice(r) if a.level != "fine") for r in recipes}
    if args.json:
        print(json.dumps([{**r.to_dict(), "on_this_cpu": notes[r.name] or None} for r in recipes], indent=2))
        return 0
    rows = [
        {
            "name": r.name + (" *" if r.name in kept else (" (*)" if r.name in skipped else "")),
            "steps": " -> ".join(s.describe() for s in r.steps),
            "what it does": r.description,
            "on this CPU": notes[r.name] or "-",
        }
        for r in recipes
    ]
    print(format_table(rows))
    print(f"\nThis CPU ({fingerprint()['cpu']}): {cpu_summary()}")
    print("* = run by `workbench optimize` when no --recipe is given. A recipe may also be a JSON file.")
    if skipped:
        print("(*) = a default left out on this CPU (slower than FP32 here); name it with --recipe to run it.")
    return 0


def _cmd_optimize(args) -> int:
    from ..core.context import RunContext, cli_reporter
    from ..measure.noise import machine_speed_note
    from ..models.registry import load_model
    from ..optimize import default_recipes_for, optimize
    from ..store.runstore import RunStore

    store = RunStore(args.store)
    reporter = cli_reporter(quiet=args.json, force_bars=args.progress)
    ctx = RunContext(on_progress=reporter)
    model = load_model(args.model, **load_kwargs(args))
    if not args.json:
        print_dataset(model)
        if not args.recipe:
            for name, why in default_recipes_for(model)[1].items():
                print(f"skipped {name}: {why} (run it anyway with --recipe {name})", file=sys.stderr)
    try:
        cands = optimize(
            model, args.recipe or None, store=store, threads=args.threads, ctx=ctx, reuse=not args.no_reuse
        )
    finally:
        reporter.close()
    if args.json:
        print(json.dumps([c.to_record() for c in cands], indent=2, default=str))
    else:
        print(format_table(candidate_rows(cands)))
        print(f"\n{len(cands)} candidates recorded in {store.path}")
        print_noisy(cands)
        note = machine_speed_note([c.metrics for c in cands if c.ok])
        if note:
            print(f"\n{note}")
    if cands and cands[0].status == "failed":  # nothing can be compared with a baseline that did not run
        print(f"workbench: error: the FP32 baseline of {model.name} failed: {cands[0].error}", file=sys.stderr)
        return 1
    return 1 if any(c.status == "failed" for c in cands) and args.strict else 0


def print_noisy(cands) -> None:
    """Say which latencies were measured on a busy machine, and how to re-time them."""
    noisy = [c for c in cands if c.ok and c.get("noisy")]
    if not noisy:
        return
    print(
        f"\n{len(noisy)} of {sum(c.ok for c in cands)} latencies were measured while the machine was busy "
        f"(timing 'noisy'): {noisy[0].get('noise')}. Their speed-ups were timed beside the baseline in the same "
        f"rounds, but re-time them on a quiet machine before relying on them: workbench remeasure "
        + " ".join(c.id for c in noisy)
    )


def _cmd_runs(args) -> int:
    from ..store.runstore import RunStore

    store = RunStore(args.store)
    cands = store.candidates(args.model, include_intermediate=args.all)
    if args.json:
        print(json.dumps([c.to_record() for c in cands], indent=2, default=str))
        return 0
    rows = candidate_rows(cands)
    for r, c in zip(rows, cands):
        r["parent"] = c.parent_id or "-"
        r["model"] = c.model
    print(format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Make AI models fit low-power devices.")
    p.add_argument(
        "--store", default=None, help="run store path (default: $WORKBENCH_STORE or ./.workbench/runs.sqlite)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("models", help="list bundled models")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_models)

    s = sub.add_parser("recipes", help="list named recipes")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_recipes)

    s = sub.add_parser("optimize", help="measure the baseline and each recipe, record every candidate")
    s.add_argument("model", help="bundled name, Hugging Face id, local folder or .onnx file")
    s.add_argument("--recipe", action="append", metavar="NAME|FILE", help="repeatable; default: the * recipes")
    s.add_argument("--threads", type=int, default=None, help="inference threads (fewer emulate a smaller device)")
    add_data_arguments(s)
    s.add_argument("--no-reuse", action="store_true", help="rerun even if the store has this candidate")
    s.add_argument("--json", action="store_true", help="print candidate records as JSON")
    s.add_argument(
        "--progress",
        action="store_true",
        help="progress bars even when not on a terminal (default there: plain progress lines)",
    )
    s.add_argument("--strict", action="store_true", help="exit 1 if any candidate failed")
    s.set_defaults(func=_cmd_optimize)

    s = sub.add_parser("runs", help="list recorded candidates")
    s.add_argument("--model", default=None)
    s.add_argument("--all", action="store_true", help="include intermediate recipe steps")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_runs)

    # the other subcommands live beside this module, one module each (imported here: the CLI is the top layer)
    from . import bundle, profile, remeasure, report, search, sensitivity

    for mod in (report, search, sensitivity, profile, bundle, remeasure):
        mod.cli_register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None) is not None and args.threads < 1:
        print(f"workbench: error: --threads must be a positive int. Got {args.threads}.", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataNotice)  # printed as notes with the data paragraph instead
            return int(args.func(args) or 0)
    except WorkbenchError as e:
        print(f"workbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("workbench: interrupted; everything recorded so far is kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
