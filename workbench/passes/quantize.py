"""INT8 (dynamic, static with calibration) and INT4 weight-only quantization in ONNX Runtime.

Static INT8 of a transformer breaks it when every op is quantized (all-MiniLM-L6-v2 embedding
cosine falls to ~0.37): activations of the attention score MatMuls and of the FFN down-projection
(after GELU) have long tails that one int8 scale cannot hold. ``exclude="auto"`` keeps those
MatMuls in float and quantizes the rest, which keeps cosine above 0.99.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..core.artifact import Artifact, onnx_artifact
from ..core.config import PassConfig, check_choice, check_range, check_reduce_range
from ..core.env import int8_weight_note, resolve_reduce_range
from ..core.errors import ConfigError, PassError
from .registry import PassJob, register_pass

__all__ = ["DynamicInt8", "StaticInt8", "Int4WeightOnly", "sensitive_matmuls"]


@dataclass(frozen=True)
class DynamicInt8(PassConfig):
    """INT8 weights, activations quantized on the fly per batch: no calibration data needed."""

    kind: ClassVar[str] = "dynamic-int8"
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"
    quantizes: ClassVar[bool] = True
    summary: ClassVar[str] = "int8 weights, activations scaled at run time; no calibration; 4x smaller"

    #: one scale per output channel: keeps MiniLM's cosine at ~0.99 (per-tensor: ~0.95)
    per_channel: bool = True
    #: 7-bit weights: "auto" uses them exactly where ONNX Runtime's u8s8 kernels saturate (x86 without
    #: VNNI, see workbench.core.env.u8s8_saturates); True/False force the choice
    reduce_range: bool | Literal["auto"] = "auto"
    weight_type: str = "qint8"
    #: None quantizes every op type dynamic quantization supports (MatMul, Attention, Gather, ...)
    op_types: tuple[str, ...] | None = None

    def validate(self) -> None:
        check_reduce_range("DynamicInt8", self.reduce_range)
        check_choice("DynamicInt8", "weight_type", self.weight_type, ("qint8", "quint8"))
        if self.op_types is not None and not self.op_types:
            raise ConfigError.out_of_range(
                "DynamicInt8", "op_types", self.op_types, "None or a non-empty tuple of op types"
            )


def _qtype(name: str):
    from onnxruntime.quantization import QuantType

    return {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[name]


@contextlib.contextmanager
def quiet_quantizer_logs():
    """ORT's quantizers log advice and per-node warnings on the root logger: keep output readable."""
    loggers = [logging.getLogger()] + [
        logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith("onnxruntime")
    ]
    old = [lg.level for lg in loggers]
    old_disable = logging.root.manager.disable
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    logging.disable(logging.WARNING)  # also covers loggers the quantizer modules create on import
    try:
        yield
    finally:
        logging.disable(old_disable)
        for lg, level in zip(loggers, old):
            lg.setLevel(level)


@register_pass(DynamicInt8)
@quiet_quantizer_logs()
def _dynamic(art: Artifact, cfg: DynamicInt8, job: PassJob) -> Artifact:
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    job.ctx.begin(job.stage or "dynamic-int8", total=1, message="quantizing weights")
    out = job.out_path("model.onnx")
    reduce = resolve_reduce_range(cfg.reduce_range)
    try:
        quantize_dynamic(
            str(art.path),
            str(out),
            per_channel=cfg.per_channel,
            reduce_range=reduce,
            weight_type=_qtype(cfg.weight_type),
            op_types_to_quantize=list(cfg.op_types) if cfg.op_types else None,
            # a fused transformer graph has ops without type info: tell the quantizer they are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
        )
    except Exception as e:
        raise PassError(f"dynamic-int8 failed: {type(e).__name__}: {e}") from None
    job.ctx.step()
    return onnx_artifact(
        out,
        **{
            **art.meta,
            "precision": "int8-dynamic",
            "granularity": "per-channel" if cfg.per_channel else "per-tensor",
            "reduce_range": reduce,
            "int8_weights": int8_weight_note(reduce),
        },
    )


@dataclass(frozen=True)
class StaticInt8(PassConfig):
    """INT8 weights and activations with scales fixed by calibration on sample inputs."""

    kind: ClassVar[str] = "static-int8"
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"
    quantizes: ClassVar[bool] = True
    summary: ClassVar[str] = "int8 weights and activations, scales from calibration samples"

    #: minmax: fast, outlier-sensitive; entropy (KL) and percentile clip long tails
    calibration: str = "minmax"
    #: 64 samples settle minmax/percentile ranges for MiniLM; entropy likes a few more
    samples: int = 64
    #: QDQ keeps float ops between Q/DQ pairs that ORT fuses; QOperator writes QLinear* ops directly
    format: str = "qdq"
    per_channel: bool = True
    #: "auto" keeps sensitive nodes (attention score MatMuls, FFN down-projections) in float
    exclude: str | tuple[str, ...] = "auto"
    op_types: tuple[str, ...] = ("MatMul", "Conv", "Gemm")
    percentile: float = 99.999
    #: as DynamicInt8.reduce_range: 7-bit weights where ONNX Runtime's u8s8 kernels saturate
    reduce_range: bool | Literal["auto"] = "auto"

    def validate(self) -> None:
        check_reduce_range("StaticInt8", self.reduce_range)
        check_choice("StaticInt8", "calibration", self.calibration, ("minmax", "entropy", "percentile"))
        check_choice("StaticInt8", "format", self.format, ("qdq", "qoperator"))
        check_range("StaticInt8", "samples", self.samples, 1, 100_000, integer=True)
        check_range("StaticInt8", "percentile", self.percentile, 90, 100, lo_open=False)
        if isinstance(self.exclude, str) and self.exclude not in ("auto", "none"):
            raise ConfigError.out_of_range(
                "StaticInt8", "exclude", self.exclude, "'auto', 'none' or a tuple of node names"
            )
        if not self.op_types:
            raise ConfigError.out_of_range("StaticInt8", "op_types", self.op_types, "a non-empty tuple of op types")
        if self.calibration != "percentile" and self.percentile != 99.999:
            raise ConfigError(
                f"StaticInt8: 'percentile'={self.percentile!r} only applies with calibration='percentile' "
                f"(got calibration={self.calibration!r}); set one or the other."
            )


def sensitive_matmuls(model) -> list[str]:
    """Names of MatMuls a transformer should keep in float under static INT8.

    - activation x activation MatMuls (attention scores Q.K^T and probs.V): neither input is a weight;
    - FFN down-projections: the MatMul fed by GELU (Gelu/FastGelu, or the Erf pattern x*0.5*(1+erf)).
    """
    inits = {i.name for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}

    def is_weight(name: str) -> bool:
        n = producer.get(name)
        return name in inits or (
            n is not None
            and n.op_type in ("Constant", "DequantizeLinear", "Transpose")
            and all(is_weight(i) for i in n.input if i)
        )

    def after_gelu(name: str, depth: int = 4) -> bool:
        n = producer.get(name)
        if n is None or depth == 0:
            return False
        if n.op_type in ("Gelu", "FastGelu", "BiasGelu", "Erf"):
            return True
        return any(after_gelu(i, depth - 1) for i in n.input if i)

    out = []
    for n in model.graph.node:
        if n.op_type != "MatMul":
            continue
        if not any(is_weight(i) for i in n.input) or after_gelu(n.input[0]):
            out.append(n.name)
    return out


class _Reader:
    def __init__(self, batches, names, ctx):
        self._it = iter(batches)
        self._names = names
        self._ctx = ctx

    def get_next(self):
        self._ctx.step()
        b = next(self._it, None)
        return None if b is None else {k: v for k, v in b.items() if k in self._names}


@register_pass(StaticInt8)
@quiet_quantizer_logs()
def _static(art: Artifact, cfg: StaticInt8, job: PassJob) -> Artifact:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = job.calibration(cfg.samples, needed_by="static-int8")
    job.ctx.begin(job.stage or "static-int8", total=len(batches) + 2, message="pre-processing")
    pre = job.out_path("pre.onnx")
    try:
        quant_pre_process(str(art.path), str(pre), skip_symbolic_shape=True)
    except Exception:
        pre = art.path  # pre-processing is an optimisation; quantize the original if it fails
    model = onnx.load(str(pre))
    if cfg.exclude == "auto":
        exclude = sensitive_matmuls(model) if job.model.info.get("model_type") not in ("cnn",) else []
    elif cfg.exclude == "none":
        exclude = []
    else:
        exclude = list(cfg.exclude)
    names = {i.name for i in model.graph.input}
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[cfg.calibration]
    out = job.out_path("model.onnx")
    reduce = resolve_reduce_range(cfg.reduce_range)
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    if cfg.calibration == "percentile":
        extra["CalibPercentile"] = cfg.percentile
    try:
        quantize_static(
            str(pre),
            str(out),
            _Reader(batches, names, job.ctx),
            calibrate_method=method,
            quant_format=QuantFormat.QDQ if cfg.format == "qdq" else QuantFormat.QOperator,
            per_channel=cfg.per_channel,
            reduce_range=reduce,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(cfg.op_types),
            nodes_to_exclude=exclude,
            extra_options=extra,
        )
    except Exception as e:
        if type(e).__name__ == "CancelledError":
            raise
        raise PassError(f"static-int8 failed: {type(e).__name__}: {e}") from None
    if pre != art.path:
        pre.unlink(missing_ok=True)
    job.ctx.step(message=f"{len(exclude)} nodes kept in float")
    return onnx_artifact(
        out,
        **{
            **art.meta,
            "precision": "int8-static",
            "calibration": cfg.calibration,
            "calibration_samples": len(batches),
            "excluded_nodes": exclude,
            "reduce_range": reduce,
            "int8_weights": int8_weight_note(reduce),
        },
    )


@dataclass(frozen=True)
class Int4WeightOnly(PassConfig):
    """4-bit block-quantized MatMul weights (ONNX Runtime MatMulNBits); activations stay float."""

    kind: ClassVar[str] = "int4-weight-only"
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"
    quantizes: ClassVar[bool] = True
    summary: ClassVar[str] = "4-bit weights in blocks (MatMulNBits): ~7x smaller MatMuls, float activations"

    #: one scale per 32 weights: the usual quality/size balance for small models
    block_size: int = 32
    symmetric: bool = True
    #: 4 = int8 compute for the 4-bit weights (fast on VNNI); 0 = fp32 compute (most accurate)
    accuracy_level: int = 4
    #: also pack embedding tables (Gather -> GatherBlockQuantized): for MiniLM the 47 MB word
    #: embedding is most of the file, so this is where the size goes
    quantize_embeddings: bool = True
    exclude: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.block_size not in (16, 32, 64, 128, 256):
            raise ConfigError.out_of_range(
                "Int4WeightOnly", "block_size", self.block_size, "one of 16, 32, 64, 128, 256"
            )
        check_choice("Int4WeightOnly", "accuracy_level", self.accuracy_level, (0, 1, 2, 3, 4))


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def gemm_to_matmul(model) -> int:
    """Rewrite Gemm nodes with constant weights as MatMul (+ Add) in place; returns how many.

    PyTorch exports nn.Linear on 2-D inputs as Gemm, which MatMulNBits does not cover; as
    MatMul + Add the same weights become 4-bit quantizable. Only the plain case is rewritten
    (alpha = beta = 1, transA = 0); others are left alone.
    """
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    new_nodes, n = [], 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in inits:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            w = w.T.copy()
        wname = f"{node.input[1]}_matmul_{n}"
        model.graph.initializer.append(numpy_helper.from_array(w, wname))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = f"{node.output[0]}_mm" if has_bias else node.output[0]
        new_nodes.append(
            helper.make_node("MatMul", [node.input[0], wname], [mm_out], name=f"{node.name or 'gemm'}_MatMul")
        )
        if has_bias:
            new_nodes.append(
                helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=f"{node.name or 'gemm'}_Add")
            )
        n += 1
    if n:
        del model.graph.node[:]
        model.graph.node.extend(new_nodes)
        used = {i for nd in model.graph.node for i in nd.input}
        keep = [i for i in model.graph.initializer if i.name in used]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)
    return n


@register_pass(Int4WeightOnly)
@quiet_quantizer_logs()
def _int4(art: Artifact, cfg: Int4WeightOnly, job: PassJob) -> Artifact:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    job.ctx.begin(job.stage or "int4-weight-only", total=1, message="packing 4-bit weights")
    model = onnx.load(str(art.path))
    rewritten = gemm_to_matmul(model)
    embeddings = cfg.quantize_embeddings and any(n.op_type == "Gather" for n in model.graph.node)
    if embeddings and _opset(model) < 21:
        # 4-bit GatherBlockQuantized needs opset 21 ops around it; convert rather than give up the size
        try:
            from onnx import version_converter

            model = version_converter.convert_version(model, 21)
        except Exception:
            embeddings = False  # keep the embedding table in float; MatMuls are still packed
    try:
        q = MatMulNBitsQuantizer(
            model,
            bits=4,
            block_size=cfg.block_size,
            is_symmetric=cfg.symmetric,
            accuracy_level=cfg.accuracy_level or None,
            nodes_to_exclude=list(cfg.exclude),
            op_types_to_quantize=("MatMul", "Gather") if embeddings else ("MatMul",),
            quant_axes=(("MatMul", 0), ("Gather", 1)),
        )
        q.process()
    except Exception as e:
        raise PassError(f"int4-weight-only failed: {type(e).__name__}: {e}") from None
    out = job.out_path("model.onnx")
    q.model.save_model_to_file(str(out), use_external_data_format=False)
    n = sum(1 for node in q.model.model.graph.node if node.op_type == "MatMulNBits")
    if n == 0:
        raise PassError("int4-weight-only found no MatMul with constant weights to quantize in this model.")
    job.ctx.step()
    return onnx_artifact(
        out,
        **{
            **art.meta,
            "precision": "int4-weight-only",
            "block_size": cfg.block_size,
            "int4_matmuls": n,
            "gemm_rewritten": rewritten,
            "int4_embeddings": embeddings,
        },
    )
