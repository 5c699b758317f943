"""Flow ``train-ssb``: run (or resume) ``seiscore.methods.ssb.train`` and publish per-epoch metrics as Prefect artifacts.

Artifacts: a progress artifact over all epochs of all phases, the table ``ssb-training-metrics``
(one new version per epoch: every epoch so far), and a markdown ``ssb-model-<name>`` per saved
model with its held-out PSNR / SSIM and gate statistics.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from seiscore.methods.ssb import TrainConfig, train
from seiscore.methods.ssb.train import plan


class ArtifactPublisher:
    """Trainer callback turning epoch and model events into Prefect artifacts and log lines."""

    def __init__(self, cfg: TrainConfig):
        self.total = sum(p.stage.epochs for p in plan(cfg)) or 1
        self.rows: list[dict[str, Any]] = []
        self.progress_id = create_progress_artifact(
            0.0, key="ssb-training-progress", description="SSB training epochs done"
        )
        self.logger = get_run_logger()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "epoch":
            row = {k: round(v, 5) if isinstance(v, float) else v for k, v in event.items() if k != "event"}
            self.rows.append(row)
            create_table_artifact(
                self.rows, key="ssb-training-metrics", description="SSB per-epoch metrics (held-out subset)"
            )
            update_progress_artifact(self.progress_id, 100.0 * self._done() / self.total)
            self.logger.info(
                f"{row['phase']} epoch {row['epoch']}: loss {row['train_loss']}, held-out PSNR {row.get('heldout_psnr')}"
            )
        elif kind == "phase_start" and event["start_epoch"]:
            self.logger.info(f"{event['phase']}: resuming at epoch {event['start_epoch']}")
        elif kind == "artifact":
            lines = [
                f"# SSB model `{event['name']}`",
                "",
                f"Folder: `{event['path']}`",
                "",
                "| mode | PSNR (dB) | SSIM | g > 0.5 |",
                "|---|---|---|---|",
            ]
            for mode, m in event["heldout"].items():
                share = f"{m['gate_dino_share']:.3f}" if "gate_dino_share" in m else "-"
                lines.append(f"| {mode} | {m['psnr']:.2f} | {m['ssim']:.4f} | {share} |")
            create_markdown_artifact("\n".join(lines), key=f"ssb-model-{event['name'].replace('_', '-')}")

    def _done(self) -> int:
        return len({(r["phase"], r["epoch"]) for r in self.rows})


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
    result = train(cfg, callback=ArtifactPublisher(cfg))
    return {
        "output_dir": str(result.output_dir),
        "artifacts": {k: str(v) for k, v in result.artifacts.items()},
        "heldout": result.heldout,
        "dataset_hash": result.dataset_hash,
    }
