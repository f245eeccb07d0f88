"""The `workbench bundle` command(s)."""

from __future__ import annotations

import json

from ..deploy.bundle import device_measurements, export_bundle, import_bundle_result
from ..store.runstore import RunStore
from .options import add_data_arguments


# ---- CLI -------------------------------------------------------------------------------------------------
def _cmd_bundle(args) -> int:
    from ..models.registry import load_model

    store = RunStore(args.store)
    cand = store.get(args.candidate)
    kw = {"n_eval": args.n_eval} if args.n_eval else {}
    out = export_bundle(
        cand, args.output, load_model(cand.model, **kw), threads=args.threads, runs=args.runs, overwrite=args.overwrite
    )
    print(f"bundle of {cand.id} ({cand.recipe_name}) written to {out}; on the device: python run_bench.py")
    return 0


def _cmd_import(args) -> int:
    from .table import format_table

    store = RunStore(args.store)
    rec = import_bundle_result(args.result, store, device_name=args.device)
    rows = [
        {
            k: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
            for k, v in r.items()
            if k != "device"
        }
        for r in device_measurements(store, rec.parent_id)
    ]
    print(format_table(rows))
    return 0


def _cmd_probe(args) -> int:
    from ..deploy.probe import export_probe
    from ..models.registry import load_model
    from .options import load_kwargs

    model = load_model(args.model, **load_kwargs(args))
    out = export_probe(model, args.output, threads=args.threads, runs=args.runs, overwrite=args.overwrite)
    n = len(json.loads((out / "probe.json").read_text())["architectures"])
    print(
        f"latency probe of {model.name} ({n} architectures, untrained) written to {out}; on the device: "
        "python run_probe.py, then back here: workbench search "
        f"{model.name} --family architecture --device-table latency_table.json --max-latency-ms MS"
    )
    return 0


def cli_register(sub) -> None:
    s = sub.add_parser("bundle", help="write a device bench bundle (ONNX model, inputs, runner) for a candidate")
    s.add_argument("candidate", help="candidate id (workbench runs)")
    s.add_argument("-o", "--output", required=True, help="folder to write")
    s.add_argument("--threads", type=int, default=None, help="threads on the device (default: the host's)")
    s.add_argument("--runs", type=int, default=50)
    s.add_argument("--n-eval", type=int, default=None)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_cmd_bundle)
    s = sub.add_parser(
        "probe",
        help="write a latency probe: every architecture of an architecture search, untrained, to time on a device",
    )
    s.add_argument("model", help="bundled name, Hugging Face id or local folder (a PyTorch model)")
    s.add_argument("-o", "--output", required=True, help="folder to write")
    s.add_argument("--threads", type=int, default=1, help="threads on the device (default 1)")
    s.add_argument("--runs", type=int, default=50)
    s.add_argument("--overwrite", action="store_true")
    add_data_arguments(s)
    s.set_defaults(func=_cmd_probe)
    s = sub.add_parser("import-bundle", help="record a device result.json beside the host measurement")
    s.add_argument("result", help="result.json written by run_bench.py")
    s.add_argument("--device", default=None, help="a name for the device (default: its hostname)")
    s.set_defaults(func=_cmd_import)
