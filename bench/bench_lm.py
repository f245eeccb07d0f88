"""SmolLM2-135M-Instruct side by side, in one run: FP32 eager, BF16 and each LM recipe.

Every variant is measured by the causal-LM task the workbench itself uses: perplexity on 32 BBC
News articles (256 tokens each) with a 95 % bootstrap CI, prefill time of a 128-token prompt,
decode tokens/s with the KV cache (batch 1, greedy), size on disk and peak memory. Prints a table
and writes bench/results/lm.json (with the generation samples). Not a test: run it with
`python bench/bench_lm.py` (about 6 minutes on 2 cores, the first run adds ~40 s of GGUF conversion).

Targets (issue 6): a candidate >= 3x FP32 eager tokens/s at <= 5 % perplexity increase, and an INT4
candidate <= 100 MB.
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import workbench as wb  # noqa: E402
from workbench.cli.main import format_table  # noqa: E402

RECIPES = [
    "lm-bf16",
    "lm-int8",
    "lm-ort-int8",
    "lm-int4",
    "lm-int4-b64",
    "lm-int4-mixed",
    "lm-torch-dynamic-int8",
]


def _progress() -> wb.RunContext:
    """Print each stage once, with the elapsed time, so a long run shows where it is."""
    t0, last = time.monotonic(), [""]

    def show(ev) -> None:
        if ev.stage != last[0]:
            last[0] = ev.stage
            print(f"[{time.monotonic() - t0:6.0f} s] {ev.stage}", file=sys.stderr, flush=True)

    return wb.RunContext(on_progress=show)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-eval", type=int, default=32, help="corpus documents scored for perplexity")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=64, help="timed decode steps (and up to 20 prefills)")
    ap.add_argument("--recipes", nargs="*", default=RECIPES)
    ap.add_argument("--out", default=str(HERE / "results" / "lm.json"))
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    model = wb.load_model("smollm2", n_eval=args.n_eval)
    load_s = time.monotonic() - t0
    bench = wb.BenchConfig(warmup=3, runs=args.runs, threads=args.threads)
    with tempfile.TemporaryDirectory() as d:
        store = wb.RunStore(Path(d) / "runs.sqlite")
        cands = wb.optimize(model, args.recipes, store=store, bench=bench, reuse=False, ctx=_progress())
    base = cands[0].metrics
    rows, records = [], []
    for c in cands:
        m = c.metrics
        rec = {
            "variant": "fp32-eager" if c.recipe_name == wb.BASELINE else c.recipe_name,
            "status": c.status,
            "runtime": c.runtime,
            "error": c.error,
        }
        if m.get("perplexity") is not None:
            rec.update(
                tokens_per_s=m["tokens_per_s"],
                decode_speedup=m["tokens_per_s"] / base["tokens_per_s"],
                prefill_ms=m["prefill_ms"],
                perplexity=m["perplexity"],
                perplexity_ci=m["perplexity_ci"],
                perplexity_increase=m["perplexity"] / base["perplexity"] - 1,
                size_mb=m["size_bytes"] / 1e6,
                peak_mem_mb=(m["peak_mem_bytes"] or 0) / 1e6,
                samples=m["samples"],
                build_time_s=m.get("build_time_s"),
            )
        records.append(rec)
        rows.append(
            {
                "variant": rec["variant"],
                "status": c.status,
                "tok/s": f"{rec['tokens_per_s']:.1f}" if "tokens_per_s" in rec else "-",
                "x fp32": f"{rec['decode_speedup']:.2f}" if "decode_speedup" in rec else "-",
                "prefill ms": f"{rec['prefill_ms']:.1f}" if "prefill_ms" in rec else "-",
                "ppl [95% CI]": (
                    f"{rec['perplexity']:.2f} [{rec['perplexity_ci'][0]:.2f}, {rec['perplexity_ci'][1]:.2f}]"
                    if "perplexity" in rec
                    else "-"
                ),
                "ppl +%": f"{100 * rec['perplexity_increase']:+.1f}" if "perplexity" in rec else "-",
                "size MB": f"{rec['size_mb']:.1f}" if "size_mb" in rec else "-",
                "mem MB": f"{rec['peak_mem_mb']:.0f}" if "peak_mem_mb" in rec else "-",
            }
        )
    print(format_table(rows))
    ok = [r for r in records if "perplexity" in r]
    fast = [r for r in ok if r["decode_speedup"] >= 3 and r["perplexity_increase"] <= 0.05]
    small = [r for r in ok if r["variant"].startswith("lm-int4") and r["size_mb"] <= 100]
    print(f"\ntarget >= 3x FP32 tok/s at <= 5 % perplexity: {', '.join(r['variant'] for r in fast) or 'NOT MET'}")
    print(f"target INT4 candidate <= 100 MB: {', '.join(r['variant'] for r in small) or 'NOT MET'}")
    print("\nsamples (greedy):")
    for r in ok:
        s = r["samples"][0]
        print(f"  {r['variant']:<22} {s['prompt']!r} -> {s['completion'][:70]!r}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "model": "smollm2",
                "source": model.source,
                "corpus": wb.lm.CORPUS_SOURCE,
                "load_s": load_s,
                "lm_spec": model.task.spec.to_dict(),
                "threads": bench.effective_threads,
                "env": wb.fingerprint(),
                "targets": {
                    "speedup_at_5pct_ppl": [r["variant"] for r in fast],
                    "int4_le_100mb": [r["variant"] for r in small],
                },
                "results": records,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nwrote {out} in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
