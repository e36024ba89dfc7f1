"""deit-distill: train data-efficient image transformers by distillation.

The packages of this distribution:

- `distill.registry`: the registries (`TEACHERS`, `STUDENTS`, `LOSSES`, `DATASETS`) and the
  typed facts each kind of part declares once, beside the part;
- `distill.recipe`: the recipe schema, its loading (YAML, overrides) and its validation;
- `distill.losses`: none, soft, hard and token distillation (the paper's formulas);
- `distill.data`: datasets, replayable augmentation, batches, loaders, mixup/cutmix;
- `distill.cache`: the logit cache's format (manifest, shards, stores, layout, plan, writer);
- `distill.engine`: runtime, training, evaluation, cache building, torchrun;
- `distill.bench`: `distill bench` (the strategy × teacher matrix) and `distill speed`;
- `distill.cli`: the `distill` command, one module per subcommand;
- `teachers/` (the adapters: timm, torchvision, checkpoint, python, cache) and
  `students/` (DeiT with class or class + distillation token, CIFAR ResNets).

Dependencies point one way: cli → bench → engine → (teachers, students, losses, data,
cache) → registry.
"""

__version__ = "0.1.0"
