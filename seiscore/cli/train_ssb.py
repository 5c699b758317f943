"""``seis train-ssb CONFIG``: train (or resume) the SSB denoiser from a YAML training config."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from seiscore.execution.fit import FitArtifact, FitDone, FitEvent, FitStart, FitStep


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``seis train-ssb``."""
    p = subparsers.add_parser(
        "train-ssb",
        help="train the SSB denoiser (3 stages, resumable) from a YAML config",
        description="Train the SSB denoiser. CONFIG is a YAML file matching seiscore.methods.ssb.TrainConfig "
        "(see configs/ssb_small.yaml). Rerunning resumes after the last completed epoch.",
    )
    p.add_argument("config", type=Path, help="YAML training configuration")
    p.add_argument("--output-dir", type=Path, default=None, help="override output_dir of the config")
    p.add_argument("--device", default=None, help="override the device (cpu, cuda, cuda:1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


class ProgressBar:
    """A tqdm bar per fit phase, fed by the typed fit events (:mod:`seiscore.execution.fit`)."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar = enabled, None

    def __call__(self, event: FitEvent) -> None:
        """Advance or replace the bar for one event."""
        if isinstance(event, FitStart) and self.enabled:
            self.close()
            total = event.steps * event.epochs
            self.bar = tqdm(total=total, initial=event.steps * event.start_epoch, desc=event.phase, unit="step")
        elif isinstance(event, FitStep) and self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.4f}")
        elif isinstance(event, FitArtifact):
            self.close()
            scores = ", ".join(
                f"{m} {v['psnr']:.2f} dB / {v['ssim']:.3f}"
                for m, v in event.metrics.items()
                if isinstance(v, dict) and {"psnr", "ssim"} <= set(v)
            )
            tqdm.write(f"saved {event.name} -> {event.path}" + (f" (held-out PSNR/SSIM: {scores})" if scores else ""))
        elif isinstance(event, FitDone):
            self.close()

    def close(self) -> None:
        """Close the current bar, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    """Train (or resume) from the YAML config with a progress bar; returns the exit code."""
    from seiscore.methods.ssb import TrainConfig, train

    cfg = TrainConfig.from_yaml(args.config)
    updates = {k: v for k, v in {"output_dir": args.output_dir, "device": args.device}.items() if v is not None}
    cfg = cfg.model_copy(update=updates) if updates else cfg
    bar = ProgressBar(enabled=not args.no_progress)
    try:
        result = train(cfg, callback=bar)
    finally:
        bar.close()
    print(f"artifacts in {result.output_dir / 'artifacts'}; metrics in {result.output_dir / 'metrics.jsonl'}")
    return 0
