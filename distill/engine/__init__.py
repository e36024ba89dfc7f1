"""The engine: the runtime a recipe runs on (`runtime`), its parts assembled on it
(`setup`), training into a run directory (`train`), evaluation (`evaluate`), the logit
cache's build (`cache_build`), optimizer and schedule (`optim`), reporting (`report`) and
torchrun's process group (`dist`)."""

from .evaluate import evaluate_model, evaluate_teacher
from .report import LogReporter, Reporter
from .runtime import Runtime, autocast, resolve_runtime
from .setup import build_student_for, build_teacher_for
from .train import TrainResult, train

__all__ = [
    "LogReporter",
    "Reporter",
    "Runtime",
    "TrainResult",
    "autocast",
    "build_student_for",
    "build_teacher_for",
    "evaluate_model",
    "evaluate_teacher",
    "resolve_runtime",
    "train",
]
