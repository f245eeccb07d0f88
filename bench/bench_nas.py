"""Architecture search under an accuracy budget: the fastest student found, timed side by side with FP32 eager.

For each model (default: MiniLM on BBC News, then digits-cnn and sensor-cnn), one architecture search from a fresh
run store (`workbench search MODEL --family architecture --max-drop 0.5`, batch 1, MiniLM at seq 128, 2 threads):
every architecture timed untrained, the promising ones trained by distillation within the time budget. Then the
FP32 PyTorch eager baseline and every trained student on the front are re-timed round-robin in one run
(`side_by_side`), and the best student's speed-up is given round by round. Prints tables, writes
bench/results/nas.json. Not a test: run it by hand on an idle machine (about 20 minutes for MiniLM).

Target (issue 17): on MiniLM + BBC News within 0.5 point, >= 10x FP32 eager with AVX-512 VNNI, >= 7x with AVX2
only, the whole search within 20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))

import workbench as wb  # noqa: E402
from workbench.core.env import cpu_flags  # noqa: E402
from workbench.measure.benchmark import (  # noqa: E402
    format_ratio_summary,
    ratio_summary,
    round_speedups,
    side_by_side,
)
from workbench.search.run import search  # noqa: E402
from workbench.search.space import SearchSpace  # noqa: E402
from workbench.tasks.budget import Budget, violations  # noqa: E402

#: issue 17's targets, x FP32 eager
TARGET_VNNI, TARGET_AVX2 = 10.0, 7.0
#: the whole search, seconds
SEARCH_LIMIT_S = 1200.0


def _target() -> float:
    flags = set(cpu_flags())
    return TARGET_VNNI if flags & {"avx512_vnni", "avx_vnni", "amx_int8"} else TARGET_AVX2


def run_model(name: str, args, target: float | None) -> dict:
    t_load = time.monotonic()
    model = wb.load_model(name)
    load_s = time.monotonic() - t_load
    store = wb.RunStore(Path(tempfile.mkdtemp(prefix=f"bench-nas-{name}-")) / "runs.sqlite")
    bench = wb.BenchConfig(threads=args.threads)
    space = SearchSpace.default(["architecture"], architecture__time_budget_s=args.time_budget * 60)
    t0 = time.monotonic()

    def said(row: dict) -> None:
        x = f"{row['speedup']:.2f}x" if row.get("speedup") else "-"
        print(f"  [{time.monotonic() - t0:5.0f}s] untrained {row['label']:<32} {row.get('p50_ms', 0):8.3f} ms {x:>7}")

    def trained(t) -> None:
        c = t.candidate
        drop = c.get("accuracy_drop")
        print(
            f"  [{time.monotonic() - t0:5.0f}s] trained   {t.params}: drop "
            f"{'-' if drop is None else f'{100 * drop:+.2f}'} pts, p50 {c.get('p50_ms') or 0:.3f} ms -> {t.verdict}",
            flush=True,
        )

    res = search(
        model,
        Budget(max_accuracy_drop=args.max_drop / 100),
        space,
        trials=args.trials,
        store=store,
        bench=bench,
        on_screen=said,
        on_trial=trained,
    )
    search_s = time.monotonic() - t0
    print(res.explain())

    # side by side in one run: FP32 eager and every trained student that was measured
    runners = {"torch FP32 eager (baseline)": model.baseline.runner(args.threads)}
    students = [t.candidate for t in res.trials if t.candidate is not None and t.candidate.ok]
    for c in students:
        runners[c.recipe_name] = wb.onnx_artifact(Path(c.artifact_path)).runner(args.threads)
    timed = side_by_side(runners, model.bench_inputs(), runs=args.runs, rounds=args.rounds, threads=args.threads)
    eager = timed["torch FP32 eager (baseline)"].p50
    rows = [
        {
            "variant": "torch FP32 eager (baseline)",
            "p50_ms": eager,
            "p90_ms": timed["torch FP32 eager (baseline)"].p90,
            "accuracy": res.baseline.get("accuracy"),
            "accuracy_drop_pts": 0.0,
            "size_mb": (res.baseline.get("size_bytes") or 0) / 1e6,
            "speedup_vs_eager": 1.0,
        }
    ]
    for c in students:
        t = timed[c.recipe_name]
        rows.append(
            {
                "variant": c.recipe_name,
                "id": c.id,
                "p50_ms": t.p50,
                "p90_ms": t.p90,
                "p50_ms_in_search": c.get("p50_ms"),
                "accuracy": c.get("accuracy"),
                "accuracy_drop_pts": 100 * (c.get("accuracy_drop") or 0.0),
                "size_mb": (c.get("size_bytes") or 0) / 1e6,
                "params": c.get("params"),
                "speedup_vs_eager": eager / t.p50,
                "fits": not violations(c, res.budget),
                "training": c.notes.get("distilled"),
            }
        )
    best = res.best if res.best is not None and res.best.id != res.baseline.id else None
    verdict: dict = {
        "best": best and best.recipe_name,
        "search_s": search_s,
        "search_within_limit": search_s <= SEARCH_LIMIT_S,
        "target": target,
        "cpu_flags": list(cpu_flags()),
    }
    if best is not None:
        b = next(r for r in rows if r["variant"] == best.recipe_name)
        verdict.update(
            speedup_vs_eager=b["speedup_vs_eager"],
            accuracy_drop_pts=b["accuracy_drop_pts"],
            per_round_vs_eager=ratio_summary(
                round_speedups(timed, "torch FP32 eager (baseline)", best.recipe_name), target or 1.0
            ),
            target_met=None if target is None else b["speedup_vs_eager"] >= target and search_s <= SEARCH_LIMIT_S,
        )
    print(f"\n{name}: {len(res.screened)} architectures timed untrained, {len(res.trials)} trained, {search_s:.0f} s")
    hdr = f"{'variant':50} {'p50 ms':>8} {'p90 ms':>8} {'MB':>6} {'acc %':>6} {'drop':>6} {'x eager':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['variant']:50} {r['p50_ms']:8.3f} {r['p90_ms']:8.3f} {r['size_mb']:6.2f} "
            f"{100 * (r['accuracy'] or 0):6.2f} {r['accuracy_drop_pts']:+6.2f} {r['speedup_vs_eager']:7.2f}x"
        )
    if best is not None:
        met = "" if target is None else f" (target {target:g}x) -> {'MET' if verdict['target_met'] else 'NOT met'}"
        print(
            f"best within {args.max_drop:g} point: {best.recipe_name} {verdict['speedup_vs_eager']:.2f}x eager"
            f"{met}; per round: {format_ratio_summary(verdict['per_round_vs_eager'])}"
        )
    else:
        print(f"no student within {args.max_drop:g} point")
    return {
        "model": name,
        "eval_examples": len(model.data.eval),
        "load_s": load_s,
        "rows": rows,
        "screened": res.screened,
        "decisions": res.decisions,
        "front": [c.recipe_name for c in res.front],
        "verdict": verdict,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["minilm", "digits-cnn", "sensor-cnn"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-drop", type=float, default=0.5, help="accuracy points")
    ap.add_argument("--time-budget", type=float, default=20.0, help="minutes per search")
    ap.add_argument("--trials", type=int, default=16, help="students trained at most per search")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", default=str(HERE / "results" / "nas.json"))
    args = ap.parse_args()
    target = _target()
    t0 = time.monotonic()
    # the speed-up target is MiniLM's; the CNN defaults report their front
    results = [run_model(m, args, target if m == "minilm" else None) for m in args.models]
    env = wb.fingerprint(args.threads)
    print(f"\nCPU: {env.get('cpu', '?')}  flags: {', '.join(cpu_flags()) or '-'}  threads={args.threads}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {"results": results, "env": env, "args": vars(args), "wall_s": time.monotonic() - t0},
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
