"""The engine: train a recipe into a run directory, evaluate a run or a recipe."""

from .evaluate import evaluate_model, evaluate_teacher
from .report import LogReporter, Reporter
from .setup import Runtime, build_student_for, build_teacher_for, resolve_runtime
from .train import TrainResult, train

__all__ = [
    "LogReporter",
    "Reporter",
    "Runtime",
    "TrainResult",
    "build_student_for",
    "build_teacher_for",
    "evaluate_model",
    "evaluate_teacher",
    "resolve_runtime",
    "train",
]
