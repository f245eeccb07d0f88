"""INT8 weight range on this CPU: every ONNX Runtime INT8 path with full-range and with 7-bit weights.

On x86 without VNNI, ONNX Runtime's u8 x s8 kernels add two adjacent products into an int16 with
saturation (VPMADDUBSW), so a full-range INT8 model can compute something other than its own QDQ
graph; 7-bit weights (``reduce_range``) cannot overflow. ``reduce_range="auto"`` (the default of
DynamicInt8, StaticInt8 and QuantAwareTraining) picks 7-bit weights exactly where
``workbench.core.env.u8s8_saturates()`` says so. This bench measures, side by side on the CPU at hand:

- exactness: for QDQ models (static INT8, QAT) the min cosine between ONNX Runtime's integer kernels
  and a float evaluation of the same graph (all graph optimizations off: Q/DQ run as float ops);
  1.0000 means the integer kernels compute what the graph says;
- quality: task accuracy (digits-cnn, MiniLM on BBC News) and cosine to FP32; perplexity for the LM.

Prints a table, writes bench/results/int8_range-<isa>.json (one file per kind of CPU). Not a test:
`python bench/bench_int8_range.py` (about 4 minutes on 2 cores; `--lm` adds SmolLM2, ~5 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("WORKBENCH_CACHE", str(HERE.parent / ".workbench" / "cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.cli.main import format_table  # noqa: E402
from workbench.core.env import cpu_flags, fingerprint, u8s8_saturates  # noqa: E402
from workbench.measure.evaluate import cosine_rows, predict  # noqa: E402
from workbench.recipes.registry import INT8_FUSIONS  # noqa: E402


def _float_graph_runner(path: str, threads: int):
    """The same ONNX file with every graph optimization off: Q/DQ and Conv/MatMul run as float ops."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return lambda inputs: sess.run(None, {n: inputs[n] for n in names})[0].astype(np.float32)


def _variants(model_name: str) -> list[tuple[str, wb.Recipe, bool]]:
    """(path, recipe, is QDQ) for both weight ranges."""
    E = wb.OnnxExport()
    out = []
    for rr in (False, True):
        tag = "7-bit" if rr else "8-bit"
        if model_name == "digits-cnn":
            out += [
                (f"static-int8 {tag}", wb.Recipe(f"static-{tag}", (E, wb.StaticInt8(reduce_range=rr))), True),
                (f"dynamic-int8 {tag}", wb.Recipe(f"dynamic-{tag}", (E, wb.DynamicInt8(reduce_range=rr))), False),
                (f"qat-int8 {tag}", wb.Recipe(f"qat-{tag}", (wb.QuantAwareTraining(reduce_range=rr),)), True),
            ]
        elif model_name == "minilm":
            out += [
                (
                    f"dynamic-int8 {tag}",
                    wb.Recipe(f"dynamic-{tag}", (E, INT8_FUSIONS, wb.DynamicInt8(reduce_range=rr))),
                    False,
                ),
                (f"static-int8 {tag}", wb.Recipe(f"static-{tag}", (E, wb.StaticInt8(reduce_range=rr))), True),
            ]
        else:  # smollm2: the lm-ort-int8 recipe (its own KV-cache export) with either range
            export = wb.get_recipe("lm-ort-int8").steps[0]
            dyn = wb.DynamicInt8(per_channel=True, op_types=("MatMul",), reduce_range=rr)
            out.append((f"lm-ort-int8 {tag}", wb.Recipe(f"lm-ort-int8-{tag}", (export, dyn)), False))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lm", action="store_true", help="also SmolLM2's lm-ort-int8 (perplexity)")
    ap.add_argument("--models", nargs="*", default=None, help="only these (digits-cnn, minilm, smollm2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    isa = "vnni" if not u8s8_saturates() else "no-vnni"
    out_path = Path(args.out or HERE / "results" / f"int8_range-{isa}.json")
    bench = wb.BenchConfig(warmup=1, runs=5, threads=args.threads)
    models = [("digits-cnn", {"n_eval": None}), ("minilm", {"n_eval": None})]
    if args.lm:
        models.append(("smollm2", {"n_eval": 16}))
    if args.models:
        models = [(n, kw) for n, kw in [*models, ("smollm2", {"n_eval": 16})] if n in args.models]
    rows, records = [], []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        store = wb.RunStore(Path(d) / "runs.sqlite")
        for name, kw in models:
            model = wb.load_model(name, **kw)
            variants = _variants(name)
            cands = wb.optimize(model, [r for _, r, _ in variants], store=store, bench=bench, reuse=False)
            base = cands[0].metrics
            for (label, _, qdq), c in zip(variants, cands[1:]):
                m = c.metrics
                rec = {"model": name, "variant": label, "status": c.status, "error": c.error}
                rec.update({k: m.get(k) for k in ("accuracy", "accuracy_drop", "cosine", "perplexity")})
                if name == "smollm2" and m.get("perplexity") and base.get("perplexity"):
                    rec["perplexity_increase"] = m["perplexity"] / base["perplexity"] - 1
                if qdq and c.status == "ok":
                    got = predict(wb.onnx_artifact(Path(c.artifact_path)).runner(args.threads), model.data.eval)
                    ref = predict(_float_graph_runner(c.artifact_path, args.threads), model.data.eval)
                    rec["exact_min_cosine"] = float(cosine_rows(got, ref).min())
                    rec["exact_argmax_agree"] = float((got.argmax(-1) == ref.argmax(-1)).mean())
                records.append(rec)
                print(f"[{time.monotonic() - t0:5.0f} s] {name} {label}: {rec}", flush=True)

                def f(v, fmt):
                    return "–" if v is None else format(v, fmt)

                rows.append(
                    {
                        "model": name,
                        "variant": label,
                        "status": c.status,
                        "exact (min cos)": f(rec.get("exact_min_cosine"), ".5f"),
                        "acc %": f(rec.get("accuracy") and 100 * rec["accuracy"], ".2f"),
                        "drop (pts)": f(rec.get("accuracy_drop") and 100 * rec["accuracy_drop"], "+.2f"),
                        "cos vs FP32": f(rec.get("cosine"), ".4f"),
                        "ppl": f(rec.get("perplexity"), ".3f"),
                    }
                )
    env = fingerprint(args.threads)
    print(f"\nCPU: {env['cpu']}, ISA {' '.join(cpu_flags())}; u8s8 kernels saturate: {u8s8_saturates()}")
    print(format_table(rows))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.exists():  # keep the records of models this run did not measure
        ran = {n for n, _ in models}
        records = [r for r in json.loads(out_path.read_text())["records"] if r["model"] not in ran] + records
    out_path.write_text(
        json.dumps(
            {"env": env, "u8s8_saturates": u8s8_saturates(), "records": records, "wall_s": time.monotonic() - t0},
            indent=2,
        )
    )
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
