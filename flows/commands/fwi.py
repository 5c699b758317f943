"""``seis fwi make-data | run | info``: velocity-model building by FWI (DRFWI modes) from the command line.

- ``make-data DIR``: :func:`seiscore.data.fwi_synth.make_fwi_dataset` - a Marmousi-like true model
  (``true_model.zarr``), its smooth and linear initial models (``initial_smooth.zarr``, ``initial_linear.zarr``)
  and the observed shots (``observed.zarr``, modelled with the 8th-order stencil, with lineage) - small by
  default (75 m cells: 40 x 123, 8 shots, 2 s, 3 Hz).
- ``run OBSERVED --run FOLDER --out STORE``: the ``build-velocity-model`` flow in this process (a temporary
  Prefect server when none is configured) on a local Dask cluster chosen for the method's resources, or on
  ``--scheduler``. Its pre-flight runs first: every problem is one line and exit 2, before a server starts.
  Rerun on the same folder to resume.
- ``info PATH``: a run folder (each mode's iterations, final misfit, metrics) or an output store (its lineage).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seiscore.cli.common import add_progress_flag, parse_params

MODES = ("grid", "mean-denorm", "pretrain", "s-denorm", "a-denorm")


def register(sub) -> None:
    """Add ``seis fwi`` with its subcommands."""
    p = sub.add_parser("fwi", help="velocity-model building by FWI (DRFWI): make-data, run, info")
    fsub = p.add_subparsers(dest="fwi_command", metavar="SUBCOMMAND")
    fsub.required = True

    m = fsub.add_parser("make-data", help="Marmousi-like true model, smooth/linear initial models, observed shots")
    m.add_argument("out", help="folder for true_model.zarr, initial_smooth.zarr, initial_linear.zarr, observed.zarr")
    m.add_argument("--spacing", type=float, default=75.0, help="cell size in m (default 75: 40 x 123 cells)")
    m.add_argument("--shots", type=int, default=8, help="number of surface shots (default 8)")
    m.add_argument("--record", type=float, default=2.0, help="record length in s (default 2)")
    m.add_argument("--dt", type=float, default=0.004, help="sample interval in s (default 0.004)")
    m.add_argument(
        "--frequency",
        type=float,
        default=3.0,
        help="Ricker peak frequency in Hz (default 3: 6 cells of 80 m per 1500 m/s wavelength)",
    )
    m.add_argument("--noise-db", type=float, default=None, help="add Gaussian noise at this SNR in dB")
    m.add_argument("--seed", type=int, default=0, help="seed of the model and the noise (default 0)")
    m.add_argument("--segy", action="store_true", help="also write the shots as observed.sgy")
    m.add_argument("--force", action="store_true", help="replace stores this product wrote before")
    m.set_defaults(func=_make_data)

    r = fsub.add_parser("run", help="invert observed shots into a velocity model (resumable Prefect flow)")
    r.add_argument("observed", help="observed shots: a shot store (.zarr) or a SEG-Y shot file (.sgy)")
    r.add_argument("--run", required=True, metavar="FOLDER", help="run folder (rerun on it to resume)")
    r.add_argument("--out", required=True, metavar="STORE", help="output velocity store (.zarr)")
    r.add_argument(
        "--initial", default="smooth", help="initial model: a velocity store, or smooth / linear from --true"
    )
    r.add_argument("--initial-model", metavar="NAME", help="model of the initial store when it holds several")
    r.add_argument("--true", metavar="STORE", help="true model store (metrics; source of smooth / linear)")
    r.add_argument("--true-model", metavar="NAME", help="model of the true store when it holds several")
    r.add_argument("--mode", default="s-denorm", choices=MODES, help="FWI mode (default s-denorm)")
    r.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="drfwi parameter override (JSON value), e.g. --param iterations=200 --param allow_cpu=true",
    )  # fmt: skip
    r.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    r.add_argument("--scheduler", help="address of an existing Dask scheduler (default SEIS_DASK_ADDRESS or local)")
    r.add_argument("--check", action="store_true", help="only pre-flight: check the inputs and print the plan")
    add_progress_flag(r, what="iterations")
    r.set_defaults(func=_run, stoppable=True)

    i = fsub.add_parser("info", help="a run folder's modes, iterations, misfit and metrics, or an output store's")
    i.add_argument("path", help="run folder or output velocity store")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)


def _make_data(args: argparse.Namespace) -> int:
    import torch

    from seiscore.cli import check_roots
    from seiscore.cli.output import shown
    from seiscore.data.fwi_synth import INITIAL, OBSERVED, TRUE_MODEL, make_fwi_dataset
    from seiscore.data.shots import export_shot_segy

    if args.spacing <= 0 or args.shots < 1 or args.record <= 0 or args.dt <= 0 or args.frequency <= 0:
        raise ValueError("spacing, shots, record, dt and frequency must be positive")
    out = check_roots(args.out, "make-data folder")
    for name in (TRUE_MODEL, *INITIAL.values(), OBSERVED):
        if (out / name).exists() and not args.force:
            raise FileExistsError(f"{out / name} exists; pass --force to replace it")
    torch.set_num_threads(1)  # deepwave on one thread (see docs/fwi.md)
    ds = make_fwi_dataset(
        out, spacing=args.spacing, n_shots=args.shots, seed=args.seed, peak_frequency=args.frequency, dt=args.dt,
        record_s=args.record, noise_db=args.noise_db, overwrite=args.force,
    )  # fmt: skip
    g = ds.geometry
    print(f"Marmousi-like model {g.nz} x {g.nx} cells at {args.spacing:g} m")
    print(f"  true model     : {shown(ds.true_model)}")
    print(f"  initial models : {shown(ds.initial_smooth)}, {shown(ds.initial_linear)}")
    print(f"  observed shots : {shown(ds.observed)} ({g.n_shots} shots x {g.n_receivers} receivers x {g.nt} samples "
          f"at {g.dt:g} s)")  # fmt: skip
    if args.segy:
        sgy = export_shot_segy(ds.observed, out / "observed.sgy", overwrite=True)
        print(f"  SEG-Y shots    : {shown(sgy)}")
    print(
        f"next: seis fwi run {shown(ds.observed)} --true {shown(ds.true_model)} --initial smooth "
        f"--run {shown(out / 'run')} --out {shown(out / 'model.zarr')} --param allow_cpu=true"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from seiscore.core.settings import get_settings
    from seiscore.execution.resources import gpu_cluster_possible

    params = parse_params(args.param) or None
    settings = get_settings(dask_address=args.scheduler)
    from flows.build_velocity_model import plan_run

    plan = plan_run(
        args.observed, args.run, args.out, initial=args.initial, initial_model=args.initial_model,
        true_model=args.true, true_name=args.true_model, mode=args.mode, params=params, seed=args.seed,
        settings=settings, gpu_possible=bool(args.scheduler or settings.dask_address) or gpu_cluster_possible(),
    )  # fmt: skip
    if args.check:
        print("\n".join(plan.summary()))
        return 0
    from flows._runtime import make_task_runner
    from flows.build_velocity_model import build_velocity_model
    from seiscore.cli import CLIError
    from seiscore.cli.output import shown, tile_progress

    flow = build_velocity_model.with_options(task_runner=make_task_runner(settings))
    try:
        with tile_progress(args.progress, kinds=("steps", "epochs")):
            result = flow(
                args.observed, args.run, args.out, initial=args.initial, initial_model=args.initial_model,
                true_model=args.true, true_name=args.true_model, mode=args.mode, params=params, seed=args.seed,
            )  # fmt: skip
    except RuntimeError as exc:  # no GPU worker, a fit that kept failing: one line
        raise CLIError(str(exc)) from exc
    print(f"{Path(result['run']).name}: {result['mode']} done")
    print(f"  velocity model : {shown(result['output'])}")
    print(f"  QC report      : {shown(result['qc'])}")
    print(f"  metrics        : {_metrics_line(result['metrics'])}")
    return 0


def _metrics_line(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def describe(path: str | Path) -> dict:
    """What ``seis fwi info`` shows: for an output store its FWI lineage; for a run folder, per mode run in it,
    the iterations done, the last normalised misfit and model metrics."""
    from flows.build_velocity_model import MODES as ALL
    from flows.build_velocity_model import read_history
    from seiscore.data.velocity import is_velocity_store, read_velocity_store

    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if is_velocity_store(path):
        models, names, grid, attrs = read_velocity_store(path)
        fwi = attrs.get("fwi")
        if not fwi:
            raise ValueError(f"{path} is a velocity store but was not written by seis fwi run (no fwi lineage)")
        return {"store": str(path), "models": names, "shape": list(models.shape[1:]), "dx": grid.dx, **fwi}
    runs = {m: path / f"fit-{m}" for m in ALL if (path / f"fit-{m}").is_dir()}
    if not runs:
        raise ValueError(f"{path} is neither an FWI run folder (no fit-<mode> folder) nor an output velocity store")
    out = {"run": str(path), "modes": {}}
    for mode, folder in runs.items():
        rows = read_history(folder)
        last = dict(rows[-1]) if rows else {}
        final = _final_metrics(folder)
        last.update({k: final[k] for k in ("misfit_norm", "mse_v", "rel_err", "ssim") if k in final})
        config = json.loads((folder / "fit_config.json").read_text()) if (folder / "fit_config.json").is_file() else {}
        total = (config.get("params") or {}).get("iterations")
        out["modes"][mode] = {
            "iterations": len(rows),
            "of": total,
            "misfit_norm": last.get("misfit_norm"),
            **{k: last[k] for k in ("mse_v", "rel_err", "ssim") if last.get(k) is not None},
            "seconds": round(sum(float(r.get("seconds") or 0.0) for r in rows), 2),
            "finished": any('"event":"done"' in line for line in _lines(folder / "events.jsonl")),
        }
    return out


def _final_metrics(folder: Path) -> dict:
    """Metrics of a finished fit's final model (its artifact's summary: ``final_mse_v``, ...), else empty."""
    from seiscore.methods.drfwi.method import ARTIFACT, load_result

    if not (folder / "artifacts" / ARTIFACT / "model_card.json").is_file():
        return {}
    summary = load_result(folder)[1].get("summary") or {}
    out = {k.removeprefix("final_"): v for k, v in summary.items() if k.startswith("final_")}
    if summary.get("misfit_norm_last") is not None:
        out["misfit_norm"] = summary["misfit_norm_last"]
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text().replace(" ", "").splitlines() if path.is_file() else []


def _info(args: argparse.Namespace) -> int:
    info = describe(args.path)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    if "store" in info:
        print(f"{info['store']}: velocity model {info['models'][0]} ({info['shape'][0]} x {info['shape'][1]} cells"
              f" of {info['dx']:g} m)")  # fmt: skip
        for key in ("mode", "initial_model", "observed", "observed_hash", "seed", "run_folder"):
            print(f"  {key:<14}: {info.get(key)}")
        print(f"  metrics       : {_metrics_line(info.get('metrics') or {})}")
        return 0
    print(f"{info['run']}: FWI run folder")
    for mode, row in info["modes"].items():
        state = "finished" if row["finished"] else "in progress / stopped"
        rest = _metrics_line({k: v for k, v in row.items() if k not in ("iterations", "of", "finished")})
        print(f"  {mode:<11}: {row['iterations']}/{row['of'] or '?'} iterations, {state}; {rest}")
    return 0
