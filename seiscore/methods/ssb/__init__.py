"""SSB: soft spatial blending of a LoRA-adapted DINOv3 expert and a Swin V2 expert (see docs/ssb.md).

Public API: :func:`denoise` (cube -> cube on 2-D sections), :func:`train` (three-stage
training with resume), :func:`save_model` / :func:`load_model` (safetensors + JSON card),
and the pydantic configurations.

The names are imported on first use (torch and transformers take seconds), so the method's
spec (:mod:`seiscore.methods.ssb.method`) can be listed and validated without them. ``train`` is
both a submodule and a function: importing the submodule never replaces the package's function.
"""

import sys
import types
from importlib import import_module

_LAZY = {
    "load_model": "artifacts",
    "read_card": "artifacts",
    "save_model": "artifacts",
    "BackboneConfig": "config",
    "DataConfig": "config",
    "ExpertConfig": "config",
    "HeadConfig": "config",
    "LoRASettings": "config",
    "RouterConfig": "config",
    "SSBModelConfig": "config",
    "StageConfig": "config",
    "TrainConfig": "config",
    "denoise": "inference",
    "SSBModel": "model",
    "TrainResult": "train",
    "train": "train",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """The package module: a submodule named like one of the lazy names (``train``) does not shadow it."""

    def __setattr__(self, name: str, value) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
