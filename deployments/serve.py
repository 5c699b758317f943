"""Prefect deployments of the pipeline, served by one long-running process.

    python -m deployments.serve [--cron "0 2 * * *"] [--timezone UTC] [--survey synthetic_demo]
    seis serve ...                       (same)

Deployments (the nightly ones at 02:00 by default; ``SEIS_SCHEDULE_CRON`` / ``SEIS_SCHEDULE_TIMEZONE`` or the
options change it, ``SEIS_SCHEDULE_INTERVAL_S`` replaces it by an interval):

- ``process-survey/nightly``: one survey (default ``synthetic_demo``), any method (blockwise or per-item);
- ``reprocess-archive/nightly``: every catalog survey, skipping those up to date;
- ``fit-method/manual``: the fit of any fit-mode method, triggered from the UI (no schedule);
- ``build-velocity-model/manual``: velocity-model building by FWI (DRFWI), triggered from the UI (no schedule);
- ``train-ssb/...``: the SSB training deployment of ``deployments/train_ssb.py``, when present;
- ``compress-velocity-archive/nightly-ENTRY``: one per catalog entry of kind velocity2d (a rerun with nothing
  changed resumes the fit, skips the encoded batches and leaves an up-to-date archive alone);
- ``decode-velocity/manual``: decode archive models at any resolution, triggered from the UI;
- ``denoise-traces/nightly-ENTRY``: one per catalog entry of kind traces3c (three-component records denoised
  by CDiffSD; a rerun with nothing changed is a no-op, an interrupted one resumes with the batches left);
- ``train-cdiffsd/manual``: CDiffSD training, triggered from the UI (no schedule).

The flows' docstrings give the parameter descriptions the Prefect UI shows in its run form.
"""

from __future__ import annotations

import argparse
import importlib
from datetime import timedelta
from typing import Any

from prefect.schedules import Cron, Interval, Schedule
from prefect.types.entrypoint import EntrypointType

from seiscore.core.settings import PipelineSettings, get_settings


def build_deployments(settings: PipelineSettings, survey: str = "synthetic_demo") -> list[Any]:
    """The served deployments: ``process-survey/nightly`` for ``survey``, ``reprocess-archive/nightly``, SSB training.

    The deployed ``process-survey`` resolves the survey's method when it runs and builds its cluster for the
    method's resources then (:mod:`flows._runtime`): a nightly SSB survey gets GPU workers when they exist."""
    from flows.process_survey import process_survey
    from flows.reprocess_archive import reprocess_archive

    schedule = deployment_schedule(settings)
    tags = ["seiscore", "nightly"]
    # Runs import the flow as ``flows.process_survey``: loaded from its file path it would be a top-level module
    # ``process_survey`` that the scheduler and workers of an existing Dask cluster cannot import.
    module = EntrypointType.MODULE_PATH
    deployments = [
        process_survey.to_deployment(
            name="nightly",
            schedules=[schedule],
            parameters={"survey": survey},
            tags=tags,
            entrypoint_type=module,
            description=(
                f"Process one catalog survey (default {survey}) nightly; trigger any survey or method from the UI form."
            ),
        ),
        reprocess_archive.to_deployment(
            name="nightly",
            schedules=[schedule],
            tags=tags,
            entrypoint_type=module,
            description="Reprocess every catalog survey whose input, method, parameters or code changed.",
        ),
    ]
    deployments.append(fit_method_deployment())
    deployments.append(build_velocity_model_deployment())
    deployments += ssb_deployments(settings)
    deployments += velocity_deployments(settings)
    deployments += traces_deployments(settings)
    return deployments


def catalog_entries(settings: PipelineSettings, kind: str) -> list[str]:
    """Names of the catalog entries of data kind ``kind`` (none when the catalog cannot be read)."""
    from seiscore.data.catalog import load_catalog

    try:
        return [n for n, e in load_catalog(settings.catalog).surveys.items() if e.kind == kind]
    except (OSError, ValueError):
        return []


def traces_deployments(settings: PipelineSettings) -> list[Any]:
    """``denoise-traces/nightly-ENTRY`` for each catalog entry of kind traces3c and ``train-cdiffsd/manual``."""
    from flows.denoise_traces import denoise_traces
    from flows.train_cdiffsd import train_cdiffsd

    module = EntrypointType.MODULE_PATH
    out = [
        denoise_traces.to_deployment(
            name=f"nightly-{name}",
            schedules=[deployment_schedule(settings)],
            parameters={"source": name},
            tags=["seiscore", "nightly", "traces"],
            entrypoint_type=module,
            description=f"Denoise the three-component records of {name} with CDiffSD (resumable, no-op when current).",
        )
        for name in catalog_entries(settings, "traces3c")
    ]
    out.append(
        train_cdiffsd.to_deployment(
            name="manual",
            tags=["seiscore", "traces", "training", "gpu"],
            entrypoint_type=module,
            description="Train (or resume training) the CDiffSD trace denoiser in a run folder (GPU worker; "
            "CPU only with allow_cpu=true).",
        )
    )
    return out


def velocity_deployments(settings: PipelineSettings) -> list[Any]:
    """``compress-velocity-archive/nightly-ENTRY`` for each catalog entry of kind velocity2d (none when the catalog
    cannot be read) and ``decode-velocity/manual``."""
    from flows.compress_velocity import compress_velocity_archive
    from flows.decode_velocity import decode_velocity

    module = EntrypointType.MODULE_PATH
    entries = catalog_entries(settings, "velocity2d")
    out = [
        compress_velocity_archive.to_deployment(
            name=f"nightly-{name}",
            schedules=[deployment_schedule(settings)],
            parameters={"collection": name},
            tags=["seiscore", "nightly", "velocity"],
            entrypoint_type=module,
            description=f"Compress the velocity collection {name} into its SIREN archive (resumable).",
        )
        for name in entries
    ]
    out.append(
        decode_velocity.to_deployment(
            name="manual",
            tags=["seiscore", "velocity"],
            entrypoint_type=module,
            description="Decode models of a velocity archive at any resolution to zarr, npy or SEG-Y.",
        )
    )
    return out


def fit_method_deployment() -> Any:
    """``fit-method/manual``: any registered fit-mode method, triggered from the UI (no schedule: a fit is started
    by a person; the run form lists the methods and takes the folder, parameters and seed)."""
    from flows.fit_method import fit_method_flow

    return fit_method_flow.to_deployment(
        name="manual",
        tags=["seiscore", "fit"],
        entrypoint_type=EntrypointType.MODULE_PATH,
        description="Run or resume the fit of a fit-mode method (training or inversion) in a run folder.",
    )


def build_velocity_model_deployment() -> Any:
    """``build-velocity-model/manual``: FWI of observed shots into a velocity store, triggered from the UI (no
    schedule; the run form takes the shots, the initial model, the mode, the parameters and the folders)."""
    from flows.build_velocity_model import build_velocity_model

    return build_velocity_model.to_deployment(
        name="manual",
        tags=["seiscore", "fwi"],
        entrypoint_type=EntrypointType.MODULE_PATH,
        description="Build (or resume building) a velocity model from observed shots by DRFWI into a velocity store.",
    )


def deployment_schedule(settings: PipelineSettings) -> Schedule:
    """The cron (nightly by default), or every ``schedule_interval_s`` seconds when that is set."""
    if settings.schedule_interval_s:
        return Interval(timedelta(seconds=settings.schedule_interval_s), timezone=settings.schedule_timezone)
    return Cron(settings.schedule_cron, timezone=settings.schedule_timezone)


def ssb_deployments(settings: PipelineSettings) -> list[Any]:
    """The SSB training deployment(s) of ``deployments/train_ssb.py``, if that module exists."""
    try:
        mod = importlib.import_module("deployments.train_ssb")
    except ModuleNotFoundError:
        return []
    for name in ("build_deployments", "build_deployment", "deployment"):
        obj = getattr(mod, name, None)
        if obj is None:
            continue
        try:
            made = obj(settings) if callable(obj) else obj
        except TypeError:
            made = obj()
        return list(made) if isinstance(made, (list, tuple)) else [made]
    return []


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``python -m deployments.serve`` (and ``seis serve``), added to ``parser`` if given."""
    parser = parser or argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cron", help="cron schedule of the deployments (default SEIS_SCHEDULE_CRON or '0 2 * * *')")
    parser.add_argument("--timezone", help="time zone of the schedule (default SEIS_SCHEDULE_TIMEZONE or UTC)")
    parser.add_argument("--survey", default="synthetic_demo", help="survey of the nightly process-survey deployment")
    return parser


def serve_deployments(cron: str | None = None, timezone: str | None = None, survey: str = "synthetic_demo") -> None:
    """Serve :func:`build_deployments` in this process until it is stopped."""
    from prefect import serve

    settings = get_settings(schedule_cron=cron, schedule_timezone=timezone)
    serve(*build_deployments(settings, survey))


def main(argv: list[str] | None = None) -> int:
    """``python -m deployments.serve``: parse the options and serve."""
    args = build_parser().parse_args(argv)
    serve_deployments(args.cron, args.timezone, args.survey)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
