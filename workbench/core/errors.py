"""One error family. Every message names the parameter, what was given and the valid choices."""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "ConfigError",
    "UnknownNameError",
    "OfflineError",
    "ModelLoadError",
    "DataError",
    "PassError",
    "ParityError",
    "RecipeError",
    "CancelledError",
    "StoreError",
    "ModelRunError",
    "DataNotice",
    "article",
]


def article(word: str) -> str:
    """``a torch``, ``an ONNX``: the article English wants (and ONNX in capitals), for messages."""
    shown = "ONNX" if word == "onnx" else word
    return ("an " if shown[:1].lower() in "aeiou" else "a ") + shown


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class ConfigError(WorkbenchError, ValueError):
    """A config field is out of range or contradicts another field."""

    @classmethod
    def out_of_range(cls, owner: str, name: str, value: object, valid: str) -> ConfigError:
        # one template, scikit-learn style: easy to read, easy to grep
        return cls(f"The {name!r} parameter of {owner} must be {valid}. Got {value!r} instead.")


class UnknownNameError(WorkbenchError, KeyError):
    """A model, recipe or pass name that is not registered."""

    def __init__(self, kind: str, name: object, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, list(known)
        plural = kind + ("es" if kind.endswith(("s", "sh", "ch", "x")) else "s")
        super().__init__(f"Unknown {kind} {name!r}. Known {plural}: {', '.join(sorted(self.known))}.")

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return self.args[0]


class OfflineError(WorkbenchError):
    """A hub model was asked for and the hub cannot be reached."""


class ModelLoadError(WorkbenchError):
    """A model file or folder exists but cannot be read (corrupt, wrong format)."""


class DataError(WorkbenchError, ValueError):
    """Evaluation or calibration data is missing, empty or of the wrong shape."""


class ModelRunError(WorkbenchError):
    """The model itself failed on its inputs (its forward raised, ONNX Runtime refused the feed)."""


class PassError(WorkbenchError):
    """A pass could not be applied to the model it was given."""


class ParityError(PassError):
    """An exported or converted model disagrees with its source beyond tolerance."""

    def __init__(self, message: str, max_abs_diff: float, atol: float):
        self.max_abs_diff, self.atol = max_abs_diff, atol
        super().__init__(message)


class RecipeError(WorkbenchError, ValueError):
    """A recipe is malformed or its steps cannot follow each other."""


class CancelledError(WorkbenchError):
    """The user cancelled the run; raised at the next step boundary."""


class StoreError(WorkbenchError):
    """The run store cannot be opened or written."""


class DataNotice(UserWarning):
    """Something about the data a user should know, not an error (``n_eval`` larger than the eval split: what was
    used instead). Also kept in ``LoadedModel.info["notes"]``, which the CLI prints instead of the warning."""
