"""Pass registry: one handler per config type; applying a pass never mutates its input."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.artifact import Artifact
from ..core.config import PassConfig, config_class
from ..core.context import RunContext
from ..core.errors import DataError, PassError, article
from ..data.splits import Split, subsample

if TYPE_CHECKING:
    from ..models.registry import LoadedModel

__all__ = ["PassJob", "register_pass", "apply_pass", "registered_passes", "handler_for"]

Handler = Callable[[Artifact, PassConfig, "PassJob"], Artifact]
_HANDLERS: dict[type[PassConfig], Handler] = {}


@dataclass
class PassJob:
    """What a pass may use besides its input artifact: the model's task and data, progress/cancel,
    and a private folder to write outputs into (the caller moves it into place on success)."""

    model: LoadedModel
    ctx: RunContext = field(default_factory=RunContext)
    workdir: Path | None = None
    threads: int | None = None
    stage: str = ""

    def __post_init__(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="wb-pass-"))

    def calibration(self, n: int, needed_by: str) -> list[dict]:
        """``n`` calibration batches of size 1 from the model's calibration split (never the eval split)."""
        calib: Split | None = self.model.data.calibration
        if calib is None or len(calib) == 0:
            raise DataError(
                f"{needed_by} needs calibration data, and model {self.model.name!r} has none. Pass data= with a "
                "calibration split to load_model, or use a dynamic pass (dynamic-int8) that needs no calibration."
            )
        calib = subsample(calib, n, seed=0)
        return [calib.take(slice(i, i + 1)).inputs for i in range(len(calib))]

    def out_path(self, name: str) -> Path:
        assert self.workdir is not None
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        return d / name


def register_pass(config_cls: type[PassConfig]) -> Callable[[Handler], Handler]:
    """Decorator: register ``fn(artifact, cfg, job) -> Artifact`` as the handler of ``config_cls``."""
    config_class(config_cls)

    def deco(fn: Handler) -> Handler:
        _HANDLERS[config_cls] = fn
        return fn

    return deco


def registered_passes() -> dict[str, type[PassConfig]]:
    return {cls.kind: cls for cls in _HANDLERS}


def handler_for(cfg: PassConfig) -> Handler:
    try:
        return _HANDLERS[type(cfg)]
    except KeyError:
        raise PassError(f"No handler registered for pass {cfg.kind!r}.") from None


def apply_pass(artifact: Artifact, cfg: PassConfig, job: PassJob) -> Artifact:
    """Apply one pass. The input artifact is left untouched; the output lives in ``job.workdir``."""
    if artifact.kind != cfg.consumes:
        raise PassError(
            f"Pass {cfg.kind!r} needs {article(cfg.consumes)} model but got {article(artifact.kind)} one. "
            + (
                "Add an 'onnx-export' step before it."
                if cfg.consumes == "onnx"
                else "Put it before the 'onnx-export' step."
            )
        )
    job.ctx.check()
    mirror = _private_input(artifact)
    try:
        out = handler_for(cfg)(artifact if mirror is None else mirror[1], cfg, job)
    except Exception:
        if job.workdir is not None:
            shutil.rmtree(job.workdir, ignore_errors=True)  # no half-written artifact survives
        raise
    finally:
        if mirror is not None:
            shutil.rmtree(mirror[0], ignore_errors=True)
    if mirror is not None and out.path is not None and mirror[0] in out.path.parents:
        raise PassError(f"Pass {cfg.kind!r} returned its input instead of a new artifact in its work folder.")
    job.ctx.check()
    return out


def _private_input(artifact: Artifact) -> tuple[Path, Artifact] | None:
    """An ONNX input seen through a private folder of links to its files, so nothing a pass (or ONNX Runtime's
    quantizer, which writes ``<input>-inferred.onnx`` beside its input) writes lands in the recorded folder."""
    if artifact.kind != "onnx" or artifact.path is None or not artifact.path.is_file():
        return None
    folder = Path(tempfile.mkdtemp(prefix="wb-input-"))
    src = artifact.path.parent.resolve()
    for f in src.iterdir():
        (folder / f.name).symlink_to(f, target_is_directory=f.is_dir())
    return folder, replace(artifact, path=folder / artifact.path.name)
