"""Pydantic configuration of the SSB denoiser: backbones, LoRA, experts, router, data and training.

Every model and training setting lives here so that a YAML file (``seis train-ssb CONFIG``)
and the JSON model card describe the same objects. Defaults follow the poster where it
gives a value (LoRA r = 16, alpha = 64, TV weight 0.005) and are small elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ExpertName = Literal["dino", "swin"]
EXPERTS: tuple[ExpertName, ExpertName] = ("swin", "dino")  # blend order: (1 - g) * swin + g * dino


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Small random-initialised backbones used by tests and CPU demos (same classes as the pretrained ones).
TINY_DINO = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "patch_size": 8,
}
TINY_SWIN = {"embed_dim": 16, "depths": [2, 2], "num_heads": [2, 2], "window_size": 4, "patch_size": 4}


class BackboneConfig(_Strict):
    """A backbone: ``pretrained`` names a local Hugging Face folder (config.json + model.safetensors);
    without it a random-initialised model is built from ``hf_config`` (keyword arguments of
    ``DINOv3ViTConfig`` / ``Swinv2Config``) and seeded by ``init_seed``."""

    kind: Literal["dinov3", "swinv2"]
    pretrained: Path | None = None
    hf_config: dict[str, Any] = Field(default_factory=dict)
    init_seed: int = 0

    @field_validator("pretrained")
    @classmethod
    def _local_only(cls, v: Path | None) -> Path | None:
        if v is not None and str(v).count("/") == 1 and not str(v).startswith((".", "/")) and not Path(v).exists():
            raise ValueError(
                f"backbone.pretrained={str(v)!r} looks like a Hub id; give a local folder in the Hugging Face "
                "layout (config.json + model.safetensors): nothing is downloaded at run time"
            )
        return v


class LoRASettings(_Strict):
    """LoRA adapters on the attention projections (poster: r = 16, alpha = 64)."""

    r: int = Field(16, ge=1)
    alpha: float = Field(64.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)


class HeadConfig(_Strict):
    """Decoder head: 1x1 projection of tokens to stride^2 * channels, pixel shuffle to full
    resolution, then ``n_convs`` 3x3 convolutions over [upsampled features, noisy input]."""

    channels: int = Field(16, ge=1)
    n_convs: int = Field(2, ge=1)


class ExpertConfig(_Strict):
    """One expert: its backbone, LoRA adapters (None: a base expert with the head only) and head."""

    backbone: BackboneConfig
    lora: LoRASettings | None = Field(default_factory=LoRASettings, description="None: base expert (no adapters)")
    head: HeadConfig = Field(default_factory=HeadConfig)


class RouterConfig(_Strict):
    """Convolutional router on [noisy, E_swin, E_dino, |E_swin - E_dino|] ending in a sigmoid."""

    channels: int = Field(16, ge=1)
    n_layers: int = Field(3, ge=2)
    tv_weight: float = Field(0.005, ge=0)


def _default_dino() -> ExpertConfig:
    return ExpertConfig(backbone=BackboneConfig(kind="dinov3", hf_config=TINY_DINO))


def _default_swin() -> ExpertConfig:
    return ExpertConfig(backbone=BackboneConfig(kind="swinv2", hf_config=TINY_SWIN))


class SSBModelConfig(_Strict):
    """The whole SSB model; ``patch`` is the square section patch the experts see."""

    dino: ExpertConfig = Field(default_factory=_default_dino)
    swin: ExpertConfig = Field(default_factory=_default_swin)
    router: RouterConfig = Field(default_factory=RouterConfig)
    residual: bool = Field(False, description="experts predict the noise; output = noisy - blended residual")
    patch: int = Field(32, ge=8)

    @model_validator(mode="after")
    def _kinds(self) -> "SSBModelConfig":
        if self.dino.backbone.kind != "dinov3" or self.swin.backbone.kind != "swinv2":
            raise ValueError("SSBModelConfig: 'dino' needs a dinov3 backbone and 'swin' a swinv2 backbone")
        return self

    def expert(self, name: ExpertName) -> ExpertConfig:
        """The configuration of expert ``name`` (``swin`` or ``dino``)."""
        return getattr(self, name)


NoiseLevel = tuple[float, float]
PAPER_NOISE_LEVELS: tuple[NoiseLevel, ...] = tuple((f, s) for f in (0.1, 0.2, 0.5) for s in (0.01, 0.02, 0.03, 0.04))


class DataConfig(_Strict):
    """Training pairs: 2-D sections cut from ``seiscore.data.synth`` surveys, one survey per
    (footprint F, noise sigma) level and per seed; random ``patch`` crops for training and
    whole sections of separately seeded surveys for the fixed held-out set."""

    noise_levels: tuple[NoiseLevel, ...] = PAPER_NOISE_LEVELS
    survey_shape: tuple[int, int, int] = (16, 64, 96)
    shape_jitter: float = Field(0.5, ge=0, description="training crossline/time lengths scaled by U(1, 1 + jitter)")
    section_axes: tuple[int, ...] = (0,)
    train_surveys_per_level: int = Field(2, ge=1)
    crops_per_survey: int = Field(32, ge=1)
    heldout_shape: tuple[int, int, int] = (24, 64, 96)
    heldout_sections_per_level: int = Field(2, ge=1)
    seed: int = 0
    user_pairs: Path | None = Field(None, description=".npz with arrays 'noisy' and 'clean' of shape (n, H, W)")

    @field_validator("section_axes")
    @classmethod
    def _axes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(a not in (0, 1, 2) for a in v):
            raise ValueError(f"section_axes must be a non-empty subset of (0, 1, 2), got {v}")
        return v


class StageConfig(_Strict):
    """One training stage: epochs, learning rate, batch size."""

    epochs: int = Field(1, ge=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(16, ge=1)


class TrainConfig(_Strict):
    """A training run: three stages per variant ("direct", "residual") plus the base experts."""

    model: SSBModelConfig = Field(default_factory=SSBModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    expert_stage: StageConfig = Field(default_factory=lambda: StageConfig(epochs=4, lr=2e-3))
    router_stage: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2, lr=2e-3))
    joint_stage: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2, lr=5e-4))
    variants: tuple[Literal["direct", "residual"], ...] = ("direct", "residual")
    train_base: bool = Field(True, description="also train base experts (head only, no LoRA) for comparison")
    output_dir: Path = Path("benchmarks/results/tmp/ssb_run")
    seed: int = 0
    device: str | None = Field(None, description="None: cuda when available, else cpu")
    epoch_eval_sections: int = Field(6, ge=1, description="held-out sections scored after every epoch (all at the end)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch default)")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        """Read and validate a training config from YAML; one-line errors for a missing file or a non-mapping."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"training config {path} must be a YAML mapping, got {type(raw).__name__}")
        return cls.model_validate(raw)
