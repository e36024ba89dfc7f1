"""The recipe schema: one pydantic section per part of a run, and the whole `Recipe`.

Only self-contained checks live here: types, ranges, the length of `data.mean`/`data.std`
against `data.in_chans`, warm-up within the epochs, the form of an auto-augment spec.
Registry names, the fit between parts and the student's shape rules are checked by one
pass over a whole recipe (`distill.recipe.validate`); `recipe_from_dict` runs both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from distill.constants import IMAGENET_MEAN, IMAGENET_STD, MAX_BATCH, MAX_SIZE
from distill.registry import TEACHERS
from distill.teacher import ENSEMBLE, NO_TEACHER, MemberOptions, compose_members

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AugmentConfig",
    "DataConfig",
    "LossConfig",
    "MemberOptions",
    "OptimConfig",
    "Recipe",
    "RunConfig",
    "ScheduleConfig",
    "StudentConfig",
    "TeacherConfig",
    "TeacherMember",
]

# Set by the recipe from data.* and student.drop_path_rate; never in student.kwargs.
RESERVED_STUDENT_KWARGS = ("num_classes", "img_size", "in_chans", "drop_path_rate", "distilled")


class FieldError(ValueError):
    """A cross-field problem that names its own dotted field (relative to the validator)."""

    def __init__(self, field: str, message: str, value: Any):
        self.field, self.message, self.value = field, message, value
        super().__init__(f"{field}: {message}")


class _Section(BaseModel):
    # inf and NaN are no learning rate, temperature or probability
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(_Section):
    """The dataset and how it is read and normalised."""

    name: str = Field("synthetic", description="Dataset registry name (`distill list datasets`).")
    root: Path | None = Field(None, description="Dataset folder; each dataset has a default.")
    num_classes: int = Field(1000, ge=2, le=1_000_000, description="Number of classes.")
    img_size: int = Field(224, ge=8, le=MAX_SIZE, description="Training and evaluation resolution.")
    in_chans: int = Field(3, ge=1, le=1024, description="Image channels (1 for grayscale).")
    mean: tuple[float, ...] = Field(IMAGENET_MEAN, description="Normalisation mean per channel.")
    std: tuple[float, ...] = Field(IMAGENET_STD, description="Normalisation std per channel.")
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bicubic"
    crop_pct: float = Field(0.875, gt=0, le=1, description="Evaluation center-crop ratio.")
    pipeline: Literal["pil", "tensor"] = Field(
        "pil", description="Training augmentation: `pil` runs timm's transform per image in "
        "the loader; `tensor` keeps images uint8 until the device and applies the same "
        "augmentation there in batches (timm's ops to the pixel, with its own batched "
        "draws of timm's random parameters; RandAugment 'rand-*' only).")
    decode: Literal["full", "reduced", "device"] = Field(
        "full", description="How `data.pipeline: tensor` decodes training image files: "
        "`full` decodes each whole in the loader worker, which crops and resizes it; "
        "`reduced` decodes a JPEG at the smallest scale (1/2, 1/4, 1/8) that still holds its "
        "crop at `img_size` (slightly other pixels); `device` decodes JPEGs on the training "
        "device in batches (nvjpeg on CUDA), other files as `full`. Evaluation always decodes "
        "in full. A logit cache records it.")
    batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="Training batch per process.")
    eval_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH,
                                        description="Evaluation batch (default 2×).")
    num_workers: int = Field(4, ge=0, le=256, description="Data-loader worker processes.")
    train_limit: int | None = Field(None, ge=1, description="Use only the first N train images.")
    val_limit: int | None = Field(None, ge=1, description="Use only the first N val images.")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Dataset-specific options (see its builder).")

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(s <= 0 for s in v):
            raise ValueError("every std must be > 0")
        return v

    @model_validator(mode="after")
    def _decode(self) -> DataConfig:
        if self.decode != "full" and self.pipeline != "tensor":
            raise FieldError("decode", f"'{self.decode}' needs data.pipeline: tensor (the pil "
                             "pipeline decodes every image in full); set data.decode: full",
                             self.decode)
        return self

    @model_validator(mode="after")
    def _channels(self) -> DataConfig:
        for key in ("mean", "std"):
            if len(getattr(self, key)) != self.in_chans:
                raise FieldError(key, f"has {len(getattr(self, key))} values for "
                                       f"in_chans={self.in_chans}", getattr(self, key))
        return self


class StudentConfig(_Section):
    """The model being trained."""

    name: str = Field("deit_tiny_distilled_patch16_224",
                      description="Student registry name or `timm:<model>`.")
    kwargs: dict[str, Any] = Field(default_factory=dict,
                                   description="Builder arguments (embed_dim, depth, patch_size…).")
    drop_path_rate: float | None = Field(None, ge=0, lt=1, description="Stochastic depth rate.")
    init: Path | None = Field(None, description="Start from these weights (safetensors or .pth).")

    @model_validator(mode="after")
    def _reserved(self) -> StudentConfig:
        reserved = set(RESERVED_STUDENT_KWARGS) & set(self.kwargs)
        if reserved:
            key = sorted(reserved)[0]
            raise FieldError(f"kwargs.{key}", "is set by the recipe (data.* or "
                              "student.drop_path_rate); remove it here", self.kwargs[key])
        return self


class TeacherMember(MemberOptions):
    """A member of `teacher.members`: its spec, its weight in the ensemble, its options."""

    name: str = Field(description="A teacher spec (`timm:<model>`, `checkpoint:<run>`, …).")
    weight: float = Field(1.0, gt=0, description="Its weight (weights are normalised to sum 1).")


class TeacherConfig(_Section):
    """Where the teacher comes from and what its inputs look like."""

    name: str | None = Field(None, description="`timm:<model>`, `torchvision:<model>`, "
                             "`checkpoint:<run dir>`, `python:<module>:<callable>`, "
                             "`ensemble:SPEC+SPEC+…`, or null.")
    members: list[TeacherMember] | None = Field(
        None, description="A teacher ensemble as a list (name, weight, options per member); "
        "read into `name: ensemble:…` and `kwargs.members`, so a resolved recipe shows "
        "those.")
    pretrained: bool = Field(False, description="Load the source's own pretrained weights.")
    weights: Path | None = Field(None, description="Load weights from this local file.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Model builder arguments.")
    mean: tuple[float, ...] | None = Field(None, description="Teacher's own mean (default: its config).")
    std: tuple[float, ...] | None = Field(None, description="Teacher's own std (default: its config).")
    input_size: int | None = Field(None, ge=8, le=MAX_SIZE,
                                   description="Teacher's input resolution.")
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
    def _no_teacher(cls, v: str | None) -> str | None:
        return None if v is None or v.lower() in NO_TEACHER else v

    @model_validator(mode="before")
    @classmethod
    def _ensemble_list(cls, data: Any) -> Any:
        """`members: [...]` -> `name: ensemble:W*SPEC+…` and `kwargs.members` (the spec's
        one parser, `distill.teacher.members`, reads those back). A `name` that is a bare
        adapter taking members (a plug-in's) is the adapter of the spec instead."""
        if not isinstance(data, dict) or not data.get("members"):
            return data
        from pydantic import ValidationError

        raw = data["members"]
        if not isinstance(raw, list):
            raise FieldError("members", "must be a list of teachers", raw)
        members = []
        for i, item in enumerate(raw):
            try:
                members.append(TeacherMember.model_validate(item))
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in err["loc"])
                raise FieldError(f"members.{i}{'.' + where if where else ''}",
                                  err["msg"], item) from None
        given = data.get("name")
        adapter = given if _takes_members(given) else ENSEMBLE
        try:
            name = compose_members([(m.weight, m.name) for m in members], adapter)
        except ValueError as exc:
            raise FieldError("members", str(exc), raw) from None
        if given not in (None, "", adapter, name):
            raise FieldError("members", f"lists an ensemble, and teacher.name names "
                              f"'{given}'; set one of them (teacher.name: null with "
                              "teacher.members)", raw)
        kwargs = dict(data.get("kwargs") or {})
        options = [m.model_dump(mode="json", exclude={"name", "weight"}, exclude_none=True)
                   for m in members]
        if any(options):
            kwargs["members"] = options
        return {**data, "name": name, "members": None, "kwargs": kwargs}


def _takes_members(name: Any) -> bool:
    """`name` is a bare adapter name (no target) registered with `members=True`."""
    return (isinstance(name, str) and bool(name) and ":" not in name and name in TEACHERS
            and TEACHERS.facts(name).members)


class LossConfig(_Section):
    """The distillation strategy and its parameters."""

    name: str = Field("token", description="none | soft | hard | token (or a plugin's).")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the distillation term.")
    tau: float = Field(1.0, gt=0, description="Temperature of soft distillation.")
    smoothing: float = Field(0.1, ge=0, lt=1, description="Label smoothing of the base CE.")
    target: Literal["hard", "soft"] = Field("hard", description="`token`: hard or soft term.")
    kl_reduction: Literal["numel", "batchmean"] = Field(
        "numel", description="KL divided by B·C (official DeiT) or by B (timm).")


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
    """Epochs and the learning-rate schedule: warm-up, then cosine (or flat)."""

    name: Literal["cosine", "constant"] = "cosine"
    epochs: int = Field(300, ge=1, le=1_000_000)
    warmup_epochs: float = Field(5, ge=0)
    warmup_lr: float = Field(1e-6, ge=0)
    min_lr: float = Field(1e-5, ge=0)
    step: Literal["iter", "epoch"] = Field(
        "iter", description="`iter`: the LR changes every optimizer step (warm-up, then "
        "cosine over the steps after it). `epoch`: as the official DeiT code steps timm's "
        "CosineLRScheduler, once after each epoch: one LR per epoch, epoch 0 at the "
        "scheduler's initial value (warmup_lr; the peak when warmup_epochs is 0) and the "
        "warm-up one epoch late, the cosine over all epochs counted from epoch 0; its logs "
        "compare line by line.")

    @model_validator(mode="after")
    def _warmup(self) -> ScheduleConfig:
        if self.warmup_epochs > self.epochs:
            raise FieldError("warmup_epochs", f"exceeds epochs={self.epochs}", self.warmup_epochs)
        return self


AUTO_AUGMENT_KINDS = ("rand", "augmix", "original", "v0", "3a", "trivial")


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
    re_count: int = Field(1, ge=1, le=100)
    mixup: float = Field(0.8, ge=0, description="Mixup alpha (0: off).")
    cutmix: float = Field(1.0, ge=0, description="CutMix alpha (0: off).")
    mixup_prob: float = Field(1.0, ge=0, le=1)
    switch_prob: float = Field(0.5, ge=0, le=1)
    mixup_mode: Literal["batch", "pair", "elem"] = "batch"
    repeated_aug: int = Field(1, ge=1, le=64, description="Repeated augmentation: copies per image.")

    @field_validator("auto_augment")
    @classmethod
    def _aa(cls, v: str | None) -> str | None:
        """Its form only; whether timm can parse it is the validation pass's question."""
        if v in (None, "", "none"):
            return None
        if not v.startswith(AUTO_AUGMENT_KINDS):
            raise ValueError("expected a timm auto-augment spec such as 'rand-m9-mstd0.5-inc1'")
        return v

    @property
    def mixing(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.mixup_prob > 0


class RunConfig(_Section):
    """Where and how the run executes."""

    out: Path | None = Field(None, description="Run directory (default runs/<recipe path>).")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of every random generator.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 on CUDA.")
    compile: bool = Field(False, description="torch.compile the student (and a live teacher).")
    channels_last: bool | None = Field(None, description="Default: convnets on CUDA.")
    ema: bool = False
    ema_decay: float = Field(0.99996, gt=0, lt=1)
    log_every: int = Field(50, ge=1, description="Steps between metrics.jsonl lines.")
    eval_every: int = Field(1, ge=1, description="Epochs between evaluations.")
    threads: int | None = Field(None, ge=1, le=4096, description="CPU threads for torch.")


class Recipe(_Section):
    """A whole run: data, student, teacher, loss, optimizer, schedule, augmentation, run.

    `Recipe.model_validate` checks the schema only; a recipe for work comes from
    `recipe_from_dict`/`load_recipe` (schema and validation pass), and a changed one from
    `updated`, which validates it again."""

    data: DataConfig = Field(default_factory=DataConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    def updated(self, changes: dict[str, Any], source: str = "recipe") -> Recipe:
        """A validated copy with dotted-field `changes` (`{"run.out": "x",
        "data.batch_size": 8}`, values taken as they are); this recipe is left as it is."""
        from .load import apply_overrides, recipe_from_dict

        data = apply_overrides(self.model_dump(mode="json"), [], dict(changes))
        return recipe_from_dict(data, source)

    def student_kwargs(self) -> dict[str, Any]:
        """What the student builder receives: its kwargs plus the data's facts."""
        d = self.data
        kwargs = dict(self.student.kwargs, num_classes=d.num_classes, in_chans=d.in_chans,
                      img_size=d.img_size)
        if self.student.drop_path_rate is not None:
            kwargs["drop_path_rate"] = self.student.drop_path_rate
        return kwargs
