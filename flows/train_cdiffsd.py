"""Flow ``train-cdiffsd``: train (or resume training) the CDiffSD trace denoiser through the ``fit`` run mode.

The fit-mode method ``cdiffsd-train`` (:mod:`seiscore.methods.cdiffsd.method`) run by the generic fit path
(:func:`flows.fit_method.fit_in_flow`): pre-flight (spec from the defaults + ``params``, the run folder a safe
write target), one ``fit`` task on a GPU worker when the cluster has one, on the CPU workers only with
``params={"allow_cpu": true}`` (the placement rule of :mod:`seiscore.execution.resources`, as for SSB and
SIREN), checkpoints and events in the run folder (a rerun on it resumes identically), and the model artifact
``FOLDER/artifacts/...`` with its model card, which ``denoise-traces`` takes as ``model``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._runtime import make_task_runner
from flows.fit_method import fit_in_flow
from seiscore.core.settings import get_settings

METHOD = "cdiffsd-train"


@flow(name="train-cdiffsd", task_runner=make_task_runner(), log_prints=True)
def train_cdiffsd(folder: str, params: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """Train CDiffSD (cold-diffusion trace denoiser) into a run folder; rerunning on the same folder resumes.

    Args:
        folder: The run folder (checkpoints, events, metrics, artifacts with a model card).
        params: Overrides of the training spec (e.g. {"epochs": 30, "n_train": 50000, "allow_cpu": true}).
        seed: Seed of the run's random numbers (the same seed and folder resume identically).
    """
    return fit_in_flow(METHOD, folder, params, seed)


def run_train_cdiffsd(folder: str, *, scheduler: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run :func:`train_cdiffsd` in this process on a local cluster (or on ``scheduler``)."""
    settings = get_settings(dask_address=scheduler)
    return train_cdiffsd.with_options(task_runner=make_task_runner(settings))(folder, **kwargs)
