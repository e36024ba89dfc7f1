"""Student backbones: the DeiT family (class token, or class + distillation token) and small
ResNets for low-resolution data, each registered in `distill.registry.STUDENTS` with its
`StudentFacts` (its shape check and how it adapts a foreign state dict included).

Students are built through the core's `distill.student.build_student`, which also builds
any timm model as `timm:<name>`; its names are re-exported here for older imports.
"""

from __future__ import annotations

from distill.student import build_student, check_kwargs, student_facts

from .deit import DeiT, adapt_deit_state
from .resnet import CifarResNet

__all__ = ["CifarResNet", "DeiT", "adapt_deit_state", "build_student", "check_kwargs",
           "student_facts"]
