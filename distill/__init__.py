"""deit-distill: train data-efficient image transformers by distillation.

Three kinds of parts plug into one engine — teachers (`teachers/`), students
(`students/`), losses (`distill.losses`) — chosen by a recipe (`distill.recipe`) and run
by the `distill` CLI.
"""

__version__ = "0.1.0"
