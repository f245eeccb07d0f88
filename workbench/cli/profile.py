"""The `workbench profile` command(s)."""

from __future__ import annotations

from ..measure.explain import why_no_speedup
from ..measure.profile import profile_model
from .options import add_data_arguments, load_kwargs, print_dataset


# ---- CLI -----------------------------------------------------------------------------------------------
def _cmd_profile(args) -> int:
    from ..models.registry import load_model
    from ..store.runstore import RunStore
    from .table import format_table

    model = load_model(args.model, **load_kwargs(args))
    print_dataset(model)
    store = RunStore(args.store)
    cand = store.get(args.candidate) if args.candidate else None
    from ..core.context import RunContext, cli_reporter

    reporter = cli_reporter()
    try:
        prof = profile_model(model, cand, threads=args.threads, runs=args.runs, ctx=RunContext(on_progress=reporter))
    finally:
        reporter.close()
    m = prof.machine
    print(
        f"machine: {m.peak_gflops:g} GFLOP/s FP32 peak, {m.bandwidth_gbs:g} GB/s, ridge {m.ridge:.2f} FLOP/byte, "
        f"{m.threads} threads"
    )
    rows = [
        {
            "node": r["node"][-50:],
            "op": r["op_type"],
            "time us": f"{r['time_us']:.1f}",
            "share": f"{100 * r['share']:.1f}%",
            "weights KB": f"{r['param_bytes'] / 1e3:.1f}",
            "FLOP/byte": f"{r['intensity']:.2f}",
            "GFLOP/s": f"{r['achieved_gflops']:.2f}",
            "bound": r["bound"],
        }
        for r in prof.rows[: args.top]
    ]
    print(format_table(rows))
    print(f"\nkernels {prof.kernel_ms:.3f} ms of a {prof.wall_ms:.3f} ms run")
    if cand is not None and args.against:
        print()
        print(why_no_speedup(cand, store.get(args.against), model, threads=args.threads))
    return 0


def cli_register(sub) -> None:
    s = sub.add_parser("profile", help="per-layer time/size breakdown and roofline; why a candidate is not faster")
    s.add_argument("model")
    s.add_argument("--candidate", default=None, help="profile this candidate id instead of the baseline")
    s.add_argument("--against", default=None, help="reference candidate id: explain why there is no speed-up")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--runs", type=int, default=20)
    s.add_argument("--top", type=int, default=25, help="rows to show")
    add_data_arguments(s)
    s.set_defaults(func=_cmd_profile)
