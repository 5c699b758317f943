"""SSB: soft spatial blending of a LoRA-adapted DINOv3 expert and a Swin V2 expert (see docs/ssb.md).

Public API: :func:`denoise` (cube -> cube on 2-D sections), :func:`train` (three-stage
training with resume), :func:`save_model` / :func:`load_model` (safetensors + JSON card),
and the pydantic configurations.
"""

from seiscore.methods.ssb.artifacts import load_model, read_card, save_model
from seiscore.methods.ssb.config import (
    BackboneConfig,
    DataConfig,
    ExpertConfig,
    HeadConfig,
    LoRASettings,
    RouterConfig,
    SSBModelConfig,
    StageConfig,
    TrainConfig,
)
from seiscore.methods.ssb.inference import denoise
from seiscore.methods.ssb.model import SSBModel
from seiscore.methods.ssb.train import TrainResult, train

__all__ = [
    "BackboneConfig",
    "DataConfig",
    "ExpertConfig",
    "HeadConfig",
    "LoRASettings",
    "RouterConfig",
    "SSBModel",
    "SSBModelConfig",
    "StageConfig",
    "TrainConfig",
    "TrainResult",
    "denoise",
    "load_model",
    "read_card",
    "save_model",
    "train",
]
