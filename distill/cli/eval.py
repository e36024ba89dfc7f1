"""`distill eval RUN_DIR|RECIPE`: evaluate a trained student on the validation split."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer

from distill.checkpoint import check_run_file, load_weights
from distill.data import build_val_loader
from distill.engine import build_student_for, evaluate_model, resolve_runtime
from distill.errors import UsageError
from distill.recipe import load_run_recipe

from ._common import SetOption, console, resolve


def evaluate(
    target: Path = typer.Argument(..., help="A run directory or a recipe YAML file."),
    weights: Path = typer.Option(None, "--weights", "-w", help="Weights to evaluate (default: "
                                 "the run's model.safetensors; required with a recipe)."),
    sets: list[str] = SetOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Top-1 of the combined prediction and of each head on the validation split."""
    if target.is_dir():
        if (target / "recipe.yaml").is_file():  # as the run wrote it (see run.json)
            check_run_file(target / "recipe.yaml")
        recipe = load_run_recipe(target, list(sets or []))
        weights = weights or target / "model.safetensors"
    else:
        recipe = resolve(target, sets, None, None, None)
        if weights is None:
            raise UsageError("--weights: needed when evaluating a recipe")
    rt = resolve_runtime(recipe)
    # The weights are loaded below: do not start from student.init again.
    recipe = recipe.updated({"student.init": None})
    model = build_student_for(recipe, rt)
    if Path(weights).is_file():  # against its run's run.json; load_weights checks its own sha256
        check_run_file(weights)
    state = load_weights(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"--weights: '{weights}' does not fit '{recipe.student.name}' ({first})"
                         ) from None
    loader = build_val_loader(recipe.data, recipe.run.seed)
    res = evaluate_model(model, loader, rt.device, rt.dtype, rt.channels_last)
    res["weights"] = str(weights)
    if as_json:
        console.print_json(json.dumps(res))
        return
    for key in ("top1", "top1_cls", "top1_dist"):
        if key in res:
            console.print(f"{key:10s} {res[key]:6.2f}%")
    console.print(f"{'images':10s} {res['images']}  ({res['images_per_s']:.0f} img/s on "
                  f"{rt.device.type}, {'bf16' if rt.dtype is torch.bfloat16 else 'fp32'})")
