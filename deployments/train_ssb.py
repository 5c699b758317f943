"""Manually triggered deployment of the ``train-ssb`` flow (no schedule: training is started by a person).

``deployments/serve.py`` imports :func:`build_deployment` and serves it with the nightly ones.
Trigger: ``prefect deployment run 'train-ssb/train-ssb-manual' -p config_path=configs/ssb_small.yaml``.
"""

from __future__ import annotations

from typing import Any

from flows.train_ssb import train_ssb

NAME = "train-ssb-manual"


def build_deployment(settings: Any = None, config_path: str = "configs/ssb_small.yaml"):
    """The RunnerDeployment of ``train-ssb`` without schedules (``settings`` is accepted for symmetry, unused)."""
    return train_ssb.to_deployment(
        name=NAME,
        parameters={"config_path": config_path},
        description="Train (or resume) the SSB denoiser from a YAML config; manual trigger only.",
        tags=["ssb", "training", "gpu"],
    )
