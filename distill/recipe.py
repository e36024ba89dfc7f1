"""Recipes: a pydantic model tree validated once, before any work.

A recipe is YAML with the sections `data`, `student`, `teacher`, `loss`, `optim`,
`schedule`, `augment`, `run`. Unknown keys are errors. `load_recipe` reads a file,
applies dotted overrides (`optim.lr=1e-3`, typed by the schema) and the shortcuts
(`--teacher`, `--student`, `--loss`), and validates everything, registry names and the fit
between loss and student included. Problems come back together in one `UsageError`, one
line each, naming the dotted field and the value the user wrote.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distill.errors import UsageError
from distill.registry import DATASETS, LOSSES, RegistryError

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "Recipe",
    "RunConfig",
    "ScheduleConfig",
    "StudentConfig",
    "TeacherConfig",
    "apply_overrides",
    "check_paths",
    "dump_recipe",
    "load_recipe",
    "recipe_from_dict",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class DataConfig(_Section):
    """The dataset and how it is read and normalised."""

    name: str = Field("synthetic", description="Dataset registry name (`distill list datasets`).")
    root: Path | None = Field(None, description="Dataset folder; each dataset has a default.")
    num_classes: int = Field(1000, ge=2, description="Number of classes.")
    img_size: int = Field(224, ge=8, description="Training and evaluation resolution.")
    in_chans: int = Field(3, ge=1, description="Image channels (1 for grayscale).")
    mean: tuple[float, ...] = Field(IMAGENET_MEAN, description="Normalisation mean per channel.")
    std: tuple[float, ...] = Field(IMAGENET_STD, description="Normalisation std per channel.")
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bicubic"
    crop_pct: float = Field(0.875, gt=0, le=1, description="Evaluation center-crop ratio.")
    batch_size: int = Field(64, ge=1, description="Training batch per process.")
    eval_batch_size: int | None = Field(None, ge=1, description="Evaluation batch (default 2×).")
    num_workers: int = Field(4, ge=0, description="Data-loader worker processes.")
    train_limit: int | None = Field(None, ge=1, description="Use only the first N train images.")
    val_limit: int | None = Field(None, ge=1, description="Use only the first N val images.")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Dataset-specific options (see its builder).")

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        DATASETS.entry(v)
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(s <= 0 for s in v):
            raise ValueError("every std must be > 0")
        return v

    @model_validator(mode="after")
    def _channels(self) -> DataConfig:
        for key in ("mean", "std"):
            if len(getattr(self, key)) != self.in_chans:
                raise _FieldError(key, f"has {len(getattr(self, key))} values for "
                                       f"in_chans={self.in_chans}", getattr(self, key))
        _check_options(self.name, self.options)
        return self


class StudentConfig(_Section):
    """The model being trained."""

    name: str = Field("deit_tiny_distilled_patch16_224",
                      description="Student registry name or `timm:<model>`.")
    kwargs: dict[str, Any] = Field(default_factory=dict,
                                   description="Builder arguments (embed_dim, depth, patch_size…).")
    drop_path_rate: float | None = Field(None, ge=0, lt=1, description="Stochastic depth rate.")
    init: Path | None = Field(None, description="Start from these weights (safetensors or .pth).")

    @field_validator("name")
    @classmethod
    def _known_student(cls, v: str) -> str:
        from students import describe

        describe(v)
        return v

    @model_validator(mode="after")
    def _kwargs(self) -> StudentConfig:
        from students import check_kwargs

        reserved = {"num_classes", "img_size", "in_chans", "drop_path_rate", "distilled"} & set(
            self.kwargs)
        if reserved:
            key = sorted(reserved)[0]
            raise _FieldError(f"kwargs.{key}", "is set by the recipe (data.* or "
                              "student.drop_path_rate); remove it here", self.kwargs[key])
        extra = {} if self.drop_path_rate is None else {"drop_path_rate": self.drop_path_rate}
        try:
            check_kwargs(self.name, {**self.kwargs, **extra})
        except UsageError as exc:
            raise _FieldError("kwargs", str(exc), self.kwargs) from None
        return self


class TeacherConfig(_Section):
    """Where the teacher comes from and what its inputs look like."""

    name: str | None = Field(None, description="`timm:<model>`, `torchvision:<model>`, "
                             "`checkpoint:<run dir>`, `python:<module>:<callable>`, or null.")
    pretrained: bool = Field(False, description="Load the source's own pretrained weights.")
    weights: Path | None = Field(None, description="Load weights from this local file.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Model builder arguments.")
    mean: tuple[float, ...] | None = Field(None, description="Teacher's own mean (default: its config).")
    std: tuple[float, ...] | None = Field(None, description="Teacher's own std (default: its config).")
    input_size: int | None = Field(None, ge=8, description="Teacher's input resolution.")
    interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None
    cache: Path | None = Field(None, description="Read this teacher's outputs from a logit "
                               "cache (`distill cache build`) instead of running it; the cache "
                               "must have been built from this teacher section.")
    mix_targets: Literal["exact", "interpolate"] = Field(
        "exact", description="With mixup/cutmix and a cache: `exact` stores the teacher's "
        "output on each mixed image (same batch and world size at train time); `interpolate` "
        "mixes per-sample outputs with the batch's lambda (any batch size).")
    cache_verify: Literal["full", "quick"] = Field(
        "full", description="At the start of a run, check every shard's sha256 (`full`) or "
        "only its size and header (`quick`, for very large caches).")

    @field_validator("name")
    @classmethod
    def _known_teacher(cls, v: str | None) -> str | None:
        from teachers.spec import NO_TEACHER, parse_teacher

        if v is None or v.lower() in NO_TEACHER:
            return None
        parse_teacher(v).check()
        return v


class LossConfig(_Section):
    """The distillation strategy and its parameters."""

    name: str = Field("token", description="none | soft | hard | token (or a plugin's).")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the distillation term.")
    tau: float = Field(1.0, gt=0, description="Temperature of soft distillation.")
    smoothing: float = Field(0.1, ge=0, lt=1, description="Label smoothing of the base CE.")
    target: Literal["hard", "soft"] = Field("hard", description="`token`: hard or soft term.")
    kl_reduction: Literal["numel", "batchmean"] = Field(
        "numel", description="KL divided by B·C (official DeiT) or by B (timm).")

    @field_validator("name")
    @classmethod
    def _known_loss(cls, v: str) -> str:
        LOSSES.entry(v)
        return v


class OptimConfig(_Section):
    """Optimizer; `lr` is for a global batch of 512 when `scale_lr` is on (DeiT's rule)."""

    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(5e-4, gt=0, description="Learning rate (per 512 images if scale_lr).")
    scale_lr: bool = Field(True, description="lr × global_batch / 512.")
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    clip_grad: float | None = Field(None, gt=0, description="Clip the global grad norm to this.")
    fused: bool | None = Field(None, description="Fused AdamW (default: on CUDA).")


class ScheduleConfig(_Section):
    """Epochs and the learning-rate schedule (per step: warm-up, then cosine)."""

    name: Literal["cosine", "constant"] = "cosine"
    epochs: int = Field(300, ge=1)
    warmup_epochs: float = Field(5, ge=0)
    warmup_lr: float = Field(1e-6, ge=0)
    min_lr: float = Field(1e-5, ge=0)

    @model_validator(mode="after")
    def _warmup(self) -> ScheduleConfig:
        if self.warmup_epochs > self.epochs:
            raise _FieldError("warmup_epochs", f"exceeds epochs={self.epochs}", self.warmup_epochs)
        return self


class AugmentConfig(_Section):
    """Training augmentation: timm's `create_transform` and `Mixup` arguments."""

    scale: tuple[float, float] = Field((0.08, 1.0), description="Random-resized-crop area range.")
    ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="Random-resized-crop aspect.")
    hflip: float = Field(0.5, ge=0, le=1)
    vflip: float = Field(0.0, ge=0, le=1)
    auto_augment: str | None = Field("rand-m9-mstd0.5-inc1", description="timm auto-augment spec.")
    color_jitter: float | None = Field(0.3, ge=0)
    re_prob: float = Field(0.25, ge=0, le=1, description="Random erasing probability.")
    re_mode: Literal["const", "rand", "pixel"] = "pixel"
    re_count: int = Field(1, ge=1)
    mixup: float = Field(0.8, ge=0, description="Mixup alpha (0: off).")
    cutmix: float = Field(1.0, ge=0, description="CutMix alpha (0: off).")
    mixup_prob: float = Field(1.0, ge=0, le=1)
    switch_prob: float = Field(0.5, ge=0, le=1)
    mixup_mode: Literal["batch", "pair", "elem"] = "batch"
    repeated_aug: int = Field(1, ge=1, description="Repeated augmentation: copies per image.")

    @field_validator("auto_augment")
    @classmethod
    def _aa(cls, v: str | None) -> str | None:
        if v in (None, "", "none"):
            return None
        if not v.startswith(("rand", "augmix", "original", "v0", "3a", "trivial")):
            raise ValueError("expected a timm auto-augment spec such as 'rand-m9-mstd0.5-inc1'")
        try:
            from timm.data.auto_augment import (
                augment_and_mix_transform,
                auto_augment_transform,
                rand_augment_transform,
            )

            hp = dict(translate_const=100, img_mean=(124, 116, 104))
            if v.startswith("rand"):
                rand_augment_transform(v, hp)
            elif v.startswith("augmix"):
                augment_and_mix_transform(v, hp)
            else:
                auto_augment_transform(v, hp)
        except Exception as exc:  # timm raises AssertionError/ValueError/KeyError
            raise ValueError(f"not a valid timm auto-augment spec ({exc or type(exc).__name__})"
                             ) from None
        return v

    @property
    def mixing(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.mixup_prob > 0


class RunConfig(_Section):
    """Where and how the run executes."""

    out: Path | None = Field(None, description="Run directory (default runs/<recipe path>).")
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 on CUDA.")
    compile: bool = Field(False, description="torch.compile the student (and a live teacher).")
    channels_last: bool | None = Field(None, description="Default: convnets on CUDA.")
    ema: bool = False
    ema_decay: float = Field(0.99996, gt=0, lt=1)
    log_every: int = Field(50, ge=1, description="Steps between metrics.jsonl lines.")
    eval_every: int = Field(1, ge=1, description="Epochs between evaluations.")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch.")


class Recipe(_Section):
    """A whole run: data, student, teacher, loss, optimizer, schedule, augmentation, run."""

    data: DataConfig = Field(default_factory=DataConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="after")
    def _fit(self) -> Recipe:
        from students import describe
        from teachers.spec import parse_teacher

        facts = LOSSES.facts(self.loss.name)
        student = describe(self.student.name)
        heads = facts.heads
        if heads == "dist" and not student.distilled:
            raise _FieldError("loss.name", f"'{self.loss.name}' needs a student with a "
                              f"distillation token; '{self.student.name}' has none (try a "
                              "*_distilled_* student)", self.loss.name)
        if heads == "cls" and student.distilled:
            raise _FieldError("loss.name", f"'{self.loss.name}' trains a class-token student; "
                              f"'{self.student.name}' has a distillation token (use 'token' or "
                              "a student without 'distilled')", self.loss.name)
        if facts.needs_teacher and self.teacher.name is None:
            raise _FieldError("teacher.name", f"loss '{self.loss.name}' needs a teacher",
                              self.teacher.name)
        if self.teacher.cache is not None and (self.teacher.name is None
                                               or parse_teacher(self.teacher.name).cached):
            raise _FieldError("teacher.cache", "names the cache of the teacher in teacher.name; "
                              "set teacher.name to the teacher it was built from, or use "
                              "--teacher cache:<dir> alone", str(self.teacher.cache))
        if self.augment.mixing and self.data.batch_size % 2:
            raise _FieldError("data.batch_size", "must be even with mixup/cutmix",
                              self.data.batch_size)
        self._check_student_builds()
        return self

    def student_kwargs(self) -> dict[str, Any]:
        """What the student builder receives: its kwargs plus the data's facts."""
        d = self.data
        kwargs = dict(self.student.kwargs, num_classes=d.num_classes, in_chans=d.in_chans,
                      img_size=d.img_size)
        if self.student.drop_path_rate is not None:
            kwargs["drop_path_rate"] = self.student.drop_path_rate
        return kwargs

    def _check_student_builds(self) -> None:
        """Build the student on the meta device: shape rules fail here, before any work."""
        import torch

        from students import build_student

        try:
            with torch.device("meta"):
                build_student(self.student.name, **self.student_kwargs())
        except UsageError as exc:
            raise _FieldError("student", str(exc), self.student.name) from None
        except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
            raise _FieldError("student", f"'{self.student.name}' cannot be built for "
                              f"{self.data.img_size}² {self.data.in_chans}-channel images with "
                              f"these kwargs: {exc}", self.student.kwargs) from None


# -- errors ------------------------------------------------------------------------------
class _FieldError(ValueError):
    """A cross-field problem that names its own dotted field (relative to the validator)."""

    def __init__(self, field: str, message: str, value: Any):
        self.field, self.message, self.value = field, message, value
        super().__init__(f"{field}: {message}")


def _check_options(dataset: str, options: dict[str, Any]) -> None:
    import inspect

    fn = DATASETS.get(dataset)
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [k for k in params if k not in ("split", "root")]
    for key in options:
        if key not in allowed:
            raise _FieldError(f"options.{key}", f"unknown option for dataset '{dataset}' "
                              f"(accepts: {', '.join(allowed) or 'none'})", options[key])


def _show(value: Any) -> str:
    """The value as the user wrote it, short: 'abc', 1e-3, [0.5, 0.5], {depth: 2}."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, Path):
        text = repr(str(value))
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _format_errors(exc: ValidationError, source: str) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"]
        value = err.get("input")
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _FieldError):
            loc = loc + ctx_err.field.split(".")
            msg, value = ctx_err.message, ctx_err.value
        elif isinstance(ctx_err, (RegistryError, UsageError)):
            msg = str(ctx_err)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        field = ".".join(loc) or "recipe"
        shown = "" if err["type"] == "missing" else f" (got {_show(value)})"
        lines.append(f"{source}: {field}: {msg}{shown}")
    return lines


# -- loading -----------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """Safe YAML that also reads `1e-3` as a float (YAML 1.2; PyYAML's 1.1 wants `1.0e-3`)."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"{path}: recipe file not found")
    try:
        data = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}:{where}: invalid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str],
                    raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (values read as YAML), then `raw` {dotted key: value}
    assignments taken as they are (paths and names from dedicated flags)."""
    data = copy.deepcopy(data)
    problems = []
    items: list[tuple[str, Any, str]] = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. optim.lr=1e-3")
            continue
        try:
            value = parse_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        items.append((key, value, item))
    items += [(key, value, f"{key}={value}") for key, value in (raw or {}).items()]
    for key, value, item in items:
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f"--set {item!r}: '{part}' is not a section")
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise UsageError(*problems)
    return data


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise UsageError(*_format_errors(exc, source)) from None


def load_recipe(
    path: str | Path | None,
    overrides: list[str] | None = None,
    *,
    teacher: str | None = None,
    student: str | None = None,
    loss: str | None = None,
    raw: dict[str, Any] | None = None,
) -> Recipe:
    """Read, override and validate a recipe. Shortcuts and `raw` (values taken verbatim,
    e.g. `{"run.out": "2024"}`) win over `--set` of the same field."""
    data = _read_yaml(Path(path)) if path is not None else {}
    raw = dict(raw or {})
    for key, value in (("teacher.name", teacher), ("student.name", student),
                       ("loss.name", loss)):
        if value is not None:
            raw[key] = value
    data = apply_overrides(data, list(overrides or []), raw)
    recipe = recipe_from_dict(data, str(path) if path is not None else "recipe")
    if recipe.run.out is None and path is not None:
        recipe.run.out = default_out(Path(path))
    return recipe


def default_out(path: Path) -> Path:
    """`recipes/fmnist/teacher.yaml` -> `runs/fmnist/teacher`; elsewhere `runs/<stem>`."""
    parts = path.with_suffix("").parts
    if "recipes" in parts:
        rest = parts[len(parts) - 1 - parts[::-1].index("recipes") + 1:]
        return Path("runs", *rest)
    return Path("runs", path.stem)


def check_paths(recipe: Recipe) -> None:
    """Check the files a recipe points at exist (data root, weights, checkpoints)."""
    problems = []
    if recipe.data.root is not None and not recipe.data.root.exists():
        problems.append(f"data.root: folder not found (got '{recipe.data.root}')")
    if recipe.data.root is None:
        default = DATASETS.facts(recipe.data.name).default_root
        if default is not None and not Path(default).exists():
            problems.append(f"data.root: not set and the default '{default}' does not exist"
                            f" (dataset '{recipe.data.name}')")
    if recipe.student.init is not None and not recipe.student.init.is_file():
        problems.append(f"student.init: file not found (got '{recipe.student.init}')")
    if recipe.teacher.weights is not None and not recipe.teacher.weights.is_file():
        problems.append(f"teacher.weights: file not found (got '{recipe.teacher.weights}')")
    if recipe.teacher.cache is not None and not (recipe.teacher.cache / "manifest.json").is_file():
        problems.append(f"teacher.cache: no manifest.json in '{recipe.teacher.cache}' (build it "
                        "with `distill cache build`)")
    if recipe.teacher.name is not None and LOSSES.facts(recipe.loss.name).needs_teacher:
        from teachers.spec import parse_teacher

        try:
            parse_teacher(recipe.teacher.name).check_paths()
        except UsageError as exc:
            problems.append(f"teacher.name: {exc} (got '{recipe.teacher.name}')")
    if problems:
        raise UsageError(*problems)


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every field, defaults included)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, width=100)
