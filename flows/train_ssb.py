"""Flow ``train-ssb``: run (or resume) the SSB training (``seiscore.methods.ssb.train``), publish per-epoch metrics.

Artifacts (:class:`flows.fit.EventPublisher`): a progress artifact over all epochs of all phases, the
table ``ssb-training-metrics`` (one new version per epoch: every epoch so far), and a markdown
``ssb-model-<name>`` per saved model with its held-out PSNR / SSIM and gate share per mode.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.fit import EventPublisher
from seiscore.methods.ssb import TrainConfig, train
from seiscore.methods.ssb.train import plan

# held-out scores shown per mode in the markdown of each saved model
MODEL_COLUMNS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "gate_dino_share": "g > 0.5"}


def publisher(cfg: TrainConfig) -> EventPublisher:
    """The fit event publisher of an SSB training (progress over every epoch of every phase)."""
    total = sum(p.stage.epochs for p in plan(cfg))
    return EventPublisher(total, prefix="ssb", title="SSB", columns=MODEL_COLUMNS)


@flow(name="train-ssb", log_prints=True)
def train_ssb(
    config_path: str = "configs/ssb_small.yaml", output_dir: str | None = None, device: str | None = None
) -> dict[str, Any]:
    """Train the SSB denoiser from the YAML ``config_path`` (resuming an interrupted run in its output folder).

    Args:
        config_path: YAML training configuration (see configs/ssb_small.yaml and docs/ssb.md).
        output_dir: Folder for checkpoints, metrics and the model artifact; default: the config's.
        device: "cuda" or "cpu"; default: the config's (cuda when available).
    """
    cfg = TrainConfig.from_yaml(config_path)
    updates = {k: v for k, v in {"output_dir": output_dir, "device": device}.items() if v is not None}
    cfg = TrainConfig.model_validate({**cfg.model_dump(), **updates}) if updates else cfg
    result = train(cfg, callback=publisher(cfg))
    return {
        "output_dir": str(result.output_dir),
        "artifacts": {k: str(v) for k, v in result.artifacts.items()},
        "heldout": result.heldout,
        "dataset_hash": result.dataset_hash,
    }
