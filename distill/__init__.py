"""deit-distill: train data-efficient image transformers by distillation.

The packages of this distribution:

- `distill.registry`: the registries (`TEACHERS`, `STUDENTS`, `LOSSES`, `DATASETS`) and the
  typed facts each kind of part declares once, beside the part;
- `distill.teacher`, `distill.student`: the contracts of teachers and students, the teacher
  spec's grammar (`adapter:target`, an ensemble's members) and building either by name;
- `distill.recipe`: the recipe schema, its loading (YAML, overrides) and its validation;
- `distill.losses`: none, soft, hard and token distillation (the paper's formulas);
- `distill.data`: datasets, replayable augmentation, batches, loaders, mixup/cutmix;
- `distill.cache`: the logit cache's format (manifest, shards, stores, layout, plan, writer);
- `distill.engine`: runtime, training, evaluation, cache building, torchrun;
- `distill.bench`: `distill bench` (the strategy × teacher matrix) and `distill speed`;
- `distill.cli`: the `distill` command, one module per subcommand;
- `distill.checkpoint`: the weights and run-folder formats (`run.json`);
- `teachers/` (the adapters: timm, torchvision, checkpoint, python, cache, ensemble) and
  `students/` (DeiT with class or class + distillation token, CIFAR ResNets): plug-ins,
  known to the core only through the registry, as a third party's are.

Dependencies point one way: cli → bench → engine → (losses, data, cache, recipe) →
(teacher, student contracts) → (registry, errors, checkpoint); `teachers`, `students` →
`distill` (never the engine, the bench, the CLI or the recipe). `tests/test_layers.py`
holds the code to these rules.
"""

__version__ = "0.1.0"
