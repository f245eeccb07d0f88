"""The `workbench remeasure` command: re-time stored candidates beside their baseline."""

from __future__ import annotations

import json

from ..tasks.base import fmt


def _cmd_remeasure(args) -> int:
    from ..core.context import RunContext, cli_reporter
    from ..remeasure import careful_bench, noisy_ids, remeasure
    from ..store.runstore import RunStore
    from .table import format_table

    store = RunStore(args.store)
    ids = list(args.ids)
    if args.noisy:
        ids += [i for i in noisy_ids(store.candidates(args.model, include_intermediate=False)) if i not in ids]
        if not ids:
            print(
                "No candidate is marked noisy" + (f" for {args.model}" if args.model else "") + ": nothing to re-time."
            )
            return 0
    if not ids:
        print("workbench: error: name the candidate ids to re-time (workbench runs lists them), or --noisy.")
        return 2
    reporter = cli_reporter(quiet=args.json)
    ctx = RunContext(on_progress=reporter)
    bench = careful_bench(args.runs, args.min_time)
    try:
        done = remeasure(ids, store=store, bench=bench, ctx=ctx)
    finally:
        reporter.close()
    if args.json:
        print(json.dumps([r.candidate.to_record() for r in done], indent=2, default=str))
        return 0
    rows = []
    for r in done:
        b, a = r.before, r.after
        rows.append(
            {
                "id": r.candidate.id,
                "recipe": r.candidate.recipe_name,
                "p50 ms before": fmt(b.get("p50_ms"), ".3g"),
                "p50 ms now": fmt(a.get("p50_ms"), ".3g"),
                "at usual speed before": fmt(b.get("p50_usual_ms"), ".3g"),
                "now": fmt(a.get("p50_usual_ms"), ".3g"),
                "speedup before": fmt(b.get("speedup"), ".2f"),
                "speedup now": fmt(a.get("speedup"), ".2f"),
                "timing now": "noisy" if a.get("noisy") else "ok",
                "why": (a.get("noise") or "")[:70],
            }
        )
    print(format_table(rows))
    print(f"\n{len(done)} re-timing(s) recorded in {store.path}; the candidates' first timings are kept.")
    return 0


def cli_register(sub) -> None:
    s = sub.add_parser(
        "remeasure", help="re-time stored candidates side by side with their baseline (after a noisy timing)"
    )
    s.add_argument("ids", nargs="*", metavar="ID", help="candidate ids (workbench runs lists them)")
    s.add_argument("--noisy", action="store_true", help="also every candidate whose latency is marked noisy")
    s.add_argument("--model", default=None, help="with --noisy: only this model's candidates")
    s.add_argument("--runs", type=int, default=None, help="timed calls per runner at least (default 200)")
    s.add_argument(
        "--min-time",
        type=float,
        default=None,
        metavar="S",
        help="seconds of timed calls per runner at least: a fast model gets more calls (default 3; 0: --runs only)",
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_remeasure)
