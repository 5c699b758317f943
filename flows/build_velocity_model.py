"""Flow ``build-velocity-model``: invert observed shot gathers into a velocity model (DRFWI, fit mode).

Inputs: the observed shots (a shot-gather store, or a SEG-Y shot file read with
:func:`seiscore.data.shots.shots_from_segy`), an initial model (a velocity store [+ the model's name], or
``"smooth"`` / ``"linear"`` derived from a true model store), a mode of :mod:`seiscore.methods.drfwi`
(default ``s-denorm``), parameter overrides, the output velocity store and optionally a true model store for
the metrics. One run folder holds everything of the run::

    RUN/observed.zarr      the observed shots as a shot store (only when they came from SEG-Y)
    RUN/initial.zarr       the initial model actually used (one model, named after its source)
    RUN/fit-<mode>/        the fit run of the mode (fit mode: checkpoints, events, metrics.jsonl, artifacts)
    RUN/qc/report.html     the QC report (+ report.md and report_images/)

1. Pre-flight (:func:`plan_run`, before a server or a cluster starts when called from the CLI): every problem is
   one line - an unreadable input, a model whose grid or spacing differs from the shots' geometry, NaN or
   out-of-range velocities, a time step that violates the CFL condition, CPU asked for a grid too large for it.
2. The method's resources (GPU, CPU only with ``allow_cpu``) choose the local cluster
   (:func:`flows._runtime.use_resources`), the placement rule picks the worker; one Prefect task ``fit`` runs
   :func:`seiscore.execution.fit.fit_method` with the ``drfwi`` spec and an :class:`flows.fit.EventPublisher`
   (progress + per-iteration metrics artifacts), while the flow follows the run's events (the CLI's bar).
3. The inverted model is written as a ``velocity2d`` store with lineage (observed data hash, initial model, mode,
   parameters, metrics) - the input the SIREN archive flow compresses - and the QC report is drawn (models,
   error maps, misfit curves of every mode run in this folder, wavenumber spectra).

Resume: rerun with the same arguments on the same run folder; the fit continues after its last checkpoint
(identical iterates), another configuration is refused in one line. Running another mode on the same folder
adds its curves to the QC.

"Small grid" for CPU (``allow_cpu=true`` with no GPU worker): ``cells x nt x shots per iteration`` at most
:data:`CPU_WORK_LIMIT` (2.5e8 cell-samples: about 2-3 s per iteration on 2 cores, e.g. 94 x 288 cells, 1,500
samples, 5 shots); larger runs need a GPU worker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from prefect import flow, get_run_logger

from flows._runtime import describe_cluster, has_resource, make_task_runner, task_runner_client, use_resources
from tasks.fwi import fit_fwi_task, publish_fwi_qc

CPU_WORK_LIMIT = 2.5e8  # cells x nt x shots per iteration allowed on CPU workers
MODES = ("grid", "mean-denorm", "pretrain", "s-denorm", "a-denorm")
Mode = Literal["grid", "mean-denorm", "pretrain", "s-denorm", "a-denorm"]
DERIVED = ("smooth", "linear")
RUN_FILES = ("observed.zarr", "initial.zarr", "qc")


class FWIInputError(ValueError):
    """A velocity-model building run that cannot start; the message names the input and the problem."""


@dataclass
class FWIPlan:
    """Everything a run needs, checked: paths, arrays, geometry, the method spec and the lineage inputs."""

    run: Path
    output: Path
    observed_path: Path
    observed_store: Path
    data: np.ndarray
    geometry: Any
    m_init: np.ndarray
    initial_label: str
    v_true: np.ndarray | None
    true_path: Path | None
    mode: str
    params: dict[str, Any]
    seed: int
    spec: Any = None
    observed_hash: str = ""
    work: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def fit_folder(self) -> Path:
        """The fit run folder of this mode."""
        return self.run / f"fit-{self.mode}"

    @property
    def initial_store(self) -> Path:
        """The initial model actually used, as a one-model velocity store in the run folder."""
        return self.run / "initial.zarr"

    def summary(self) -> list[str]:
        """Lines describing the plan (``seis fwi run --check``)."""
        g = self.geometry
        return [
            f"run folder : {self.run}",
            f"observed   : {self.observed_path} ({g.n_shots} shots x {g.n_receivers} receivers x {g.nt} samples,"
            f" dt {g.dt:g} s, {g.peak_frequency:g} Hz)",
            f"grid       : {g.nz} x {g.nx} cells of {g.dx:g} m",
            f"initial    : {self.initial_label}",
            f"mode       : {self.mode}",
            f"params     : {json.dumps(self.params, sort_keys=True, default=str)}",
            f"work       : {self.work:.3g} cell-samples per iteration (CPU limit {CPU_WORK_LIMIT:.3g})",
            f"output     : {self.output}",
            *self.notes,
        ]


def _hash_observed(data: np.ndarray, geometry) -> str:
    """``blake2b:HEX`` of the observed samples (float32, C order) and the geometry: the data's identity in the
    lineage, the same whether the shots came from SEG-Y or a store."""
    h = hashlib.blake2b(digest_size=20)
    h.update(np.ascontiguousarray(data, dtype=np.float32).tobytes())
    h.update(geometry.model_dump_json().encode())
    return f"blake2b:{h.hexdigest()}"


def _read_observed(path: Path, shape: tuple[int, int], dx: float):
    from seiscore.data.shots import is_shot_store, read_shot_store, shots_from_segy

    if not path.exists():
        raise FileNotFoundError(f"observed shots {path} do not exist")
    if path.suffix.lower() in (".sgy", ".segy"):
        data, geometry = shots_from_segy(path, dx=dx, nz=shape[0], nx=shape[1])
        return np.asarray(data, np.float32), geometry, True
    if not is_shot_store(path):
        raise FWIInputError(f"observed shots {path}: not a shot-gather store or a .sgy/.segy file")
    data, geometry, _ = read_shot_store(path)
    return np.asarray(data, np.float32), geometry, False


def _one_model(path: Path, name: str | None, what: str) -> tuple[np.ndarray, Any, str]:
    from seiscore.data.velocity import read_velocity_store

    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    models, names, grid, _ = read_velocity_store(path)
    if name is None:
        if len(names) != 1:
            raise FWIInputError(f"{what} {path} holds {len(names)} models; name one ({', '.join(names[:5])}, ...)")
        return models[0], grid, names[0]
    if name not in names:
        raise FWIInputError(f"{what} {path} has no model {name!r} (it holds {', '.join(names[:5])})")
    return models[names.index(name)], grid, name


def _check_grid(v: np.ndarray, grid, geometry, what: str) -> None:
    if v.shape != (geometry.nz, geometry.nx):
        raise FWIInputError(
            f"{what} is {v.shape[0]} x {v.shape[1]} cells but the shots' geometry is {geometry.nz} x {geometry.nx}"
        )
    tol = 1e-6 * geometry.dx
    if grid is not None and (abs(grid.dx - geometry.dx) > tol or abs(grid.dz - geometry.dx) > tol):
        raise FWIInputError(
            f"{what} has spacing dz={grid.dz:g} m, dx={grid.dx:g} m but the shots' geometry uses "
            f"{geometry.dx:g} m cells"
        )


def plan_run(
    observed: str,
    run: str,
    output: str,
    *,
    initial: str = "smooth",
    initial_model: str | None = None,
    true_model: str | None = None,
    true_name: str | None = None,
    mode: str = "s-denorm",
    params: dict[str, Any] | None = None,
    seed: int = 0,
    settings: Any = None,
    gpu_possible: bool | None = None,
) -> FWIPlan:
    """Check a run before anything starts (see the module docstring) and return its :class:`FWIPlan`.

    ``initial``: a velocity store (``initial_model`` names the model when it holds several), or ``"smooth"`` /
    ``"linear"`` derived from ``true_model`` (:func:`seiscore.data.marmousi.initial_model`). ``gpu_possible``:
    whether a GPU worker can be had (default: a scheduler address is configured, or this machine has a GPU);
    when not, a CPU run must be allowed (``allow_cpu``) and small. Raises one-line ``ValueError`` subclasses
    (or ``FileNotFoundError``)."""
    from seiscore.core.safety import check_write_target, data_roots
    from seiscore.core.settings import get_settings
    from seiscore.data.velocity import validate_models
    from seiscore.execution.resources import gpu_cluster_possible
    from seiscore.methods.drfwi.engine import check_cfl
    from seiscore.methods.registry import resolve_spec

    settings = settings if settings is not None else get_settings()
    if mode not in MODES:
        raise FWIInputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    roots = data_roots(None, settings) or None
    run_dir = check_write_target(run, what="run folder", roots=roots, replace=False)
    if run_dir.exists() and not run_dir.is_dir():
        raise FWIInputError(f"run folder {run_dir} exists and is not a folder")
    out = check_write_target(output, what="output velocity store", roots=roots, replace=True)
    inside = out.relative_to(run_dir).parts if out.is_relative_to(run_dir) else None
    if inside is not None and (not inside or inside[0].startswith("fit-") or inside[0] in RUN_FILES):
        raise FWIInputError(f"output velocity store {out} would overwrite the run folder's own files; choose another")

    v_true = true_path = tname = None
    if true_model is not None:
        true_path = Path(true_model).expanduser().resolve()
        v_true, grid_t, tname = _one_model(true_path, true_name, "true model")
    if initial in DERIVED:
        if v_true is None:
            raise FWIInputError(f"initial model {initial!r} is derived from a true model: give true_model")
        ref, ref_grid = v_true, grid_t
    else:
        ipath = Path(initial).expanduser().resolve()
        m_init, grid_i, iname = _one_model(ipath, initial_model, "initial model")
        ref, ref_grid = m_init, grid_i
    obs_path = Path(observed).expanduser().resolve()
    data, geometry, from_segy = _read_observed(obs_path, ref.shape, ref_grid.dx)
    geometry.check_data(data, what=f"observed shots {obs_path.name}")
    if not np.isfinite(data).all():
        raise FWIInputError(f"observed shots {obs_path} hold {int((~np.isfinite(data)).sum())} NaN or infinite samples")
    if v_true is not None:
        _check_grid(v_true, grid_t, geometry, f"true model {tname!r} of {true_path}")
    if initial in DERIVED:
        from seiscore.data.marmousi import initial_model as derive

        m_init = np.asarray(derive(v_true, kind=initial, dx=geometry.dx), np.float32)
        label = f"{initial} (from {true_path.name}:{tname})"
    else:
        _check_grid(m_init, grid_i, geometry, f"initial model {iname!r} of {ipath}")
        label = f"{ipath}:{iname}"
    validate_models(m_init[None], [f"initial {label}"])
    _check_same_inputs(run_dir, m_init, label)

    p = dict(params or {})
    # One torch thread unless told otherwise: with 2+ threads deepwave's CPU propagation was measured 5-10x
    # slower on a shared 2-core machine (OpenMP threads under oversubscription); no effect on a GPU.
    p.setdefault("threads", 1)
    spec = resolve_spec(None, method="drfwi", params={**p, **_data_params(obs_path, run_dir, from_segy, true_path,
                                                                           true_name, mode)})  # fmt: skip
    cfg = spec.params
    v_max = max(float(m_init.max()), float(getattr(cfg, "bounds", (0.0, m_init.max()))[1]))
    check_cfl(v_max, geometry.dx, geometry.dt)
    shots = min(int(getattr(cfg, "shots_per_iteration", geometry.n_shots) or geometry.n_shots), geometry.n_shots)
    work = float(geometry.nz * geometry.nx) * geometry.nt * shots
    if gpu_possible is None:
        gpu_possible = bool(getattr(settings, "dask_address", None)) or gpu_cluster_possible()
    notes = []
    if not gpu_possible:
        if not spec.allows_cpu():
            raise FWIInputError(
                "no GPU worker here; pass the parameter allow_cpu=true to run on the CPU (small grids only: "
                f"cells x nt x shots per iteration <= {CPU_WORK_LIMIT:.3g})"
            )
        if work > CPU_WORK_LIMIT:
            raise FWIInputError(
                f"grid too large for CPU: {geometry.nz} x {geometry.nx} cells x {geometry.nt} samples x {shots} shots "
                f"per iteration = {work:.3g} > {CPU_WORK_LIMIT:.3g}; run on a GPU worker or reduce the grid, the "
                "record length or shots_per_iteration"
            )
        notes.append("device     : CPU (allow_cpu=true, no GPU worker)")
    return FWIPlan(
        run=run_dir, output=out, observed_path=obs_path,
        observed_store=(run_dir / "observed.zarr") if from_segy else obs_path, data=data, geometry=geometry,
        m_init=m_init, initial_label=label, v_true=v_true, true_path=true_path, mode=mode, params=p, seed=seed,
        spec=spec, observed_hash=_hash_observed(data, geometry), work=work, notes=notes,
    )  # fmt: skip


def _check_same_inputs(run_dir: Path, m_init: np.ndarray, label: str) -> None:
    """Refuse a run folder whose fits started from another initial model (their resumption and QC would mix
    starts); nothing when the folder has none yet."""
    from seiscore.data.velocity import is_velocity_store, read_velocity_store

    store = run_dir / "initial.zarr"
    if not is_velocity_store(store):
        return
    models, _, _, attrs = read_velocity_store(store)
    if models.shape[1:] != m_init.shape or not np.array_equal(models[0], m_init):
        raise FWIInputError(
            f"run folder {run_dir} holds runs from another initial model ({attrs.get('initial_model')}), not "
            f"{label}; use a new run folder"
        )


def _data_params(obs: Path, run: Path, from_segy: bool, true_path: Path | None, true_name, mode: str) -> dict:
    """The drfwi spec's data parameters of a run: the shot store, the initial store in the run folder, the mode."""
    out = {
        "observed": str(run / "observed.zarr" if from_segy else obs),
        "initial": str(run / "initial.zarr"),
        "initial_model": "initial",
        "mode": mode,
    }
    if true_path is not None:
        out["true_model"] = str(true_path)
        if true_name is not None:
            out["true_model_name"] = true_name
    return out


def prepare_inputs(plan: FWIPlan) -> None:
    """Write the run folder's inputs: the SEG-Y shots as a shot store, the initial model as a one-model store
    (both rewritten identically on a rerun; atomic)."""
    from seiscore.data.shots import write_shot_store
    from seiscore.data.velocity import VelocityGrid, write_velocity_store

    plan.run.mkdir(parents=True, exist_ok=True)
    if plan.observed_store != plan.observed_path and not plan.observed_store.exists():
        write_shot_store(plan.observed_store, plan.data, plan.geometry, attrs={"source": str(plan.observed_path)})
    dx = plan.geometry.dx
    write_velocity_store(
        plan.initial_store, plan.m_init[None], grid=VelocityGrid(dz=dx, dx=dx), names=["initial"],
        attrs={"initial_model": plan.initial_label}, overwrite=True,
    )  # fmt: skip


def read_history(fit_folder: Path) -> list[dict[str, Any]]:
    """Per-iteration rows (iteration, misfit, misfit_norm, seconds, propagation_s, network_s, mse_v, ...) of a
    DRFWI fit folder: the artifact's history when the fit finished, else the iterations its events report so far
    (iteration, misfit only)."""
    from seiscore.execution.fit import FitStep, read_events
    from seiscore.methods.drfwi.method import ARTIFACT, load_result

    fit_folder = Path(fit_folder)
    if (fit_folder / "artifacts" / ARTIFACT / "model_card.json").is_file():
        return [dict(r) for r in load_result(fit_folder)[1].get("history", [])]
    if not (fit_folder / "events.jsonl").is_file():
        return []
    rows: dict[int, dict[str, Any]] = {}
    for e in read_events(fit_folder):
        if isinstance(e, FitStep) and e.phase == "invert":
            rows[e.step - 1] = {"iteration": e.step - 1, "misfit": e.loss}
    return [rows[k] for k in sorted(rows)]


def inverted_model(fit_folder: Path, summary: dict[str, Any] | None = None) -> np.ndarray:
    """The inverted model ``(nz, nx)`` m/s of a finished fit (its artifact's ``velocity`` tensor)."""
    from seiscore.methods.drfwi.method import load_result

    return load_result(Path(summary["artifact"]) if summary and summary.get("artifact") else fit_folder)[0]


def model_metrics(v: np.ndarray, m_init: np.ndarray, v_true: np.ndarray | None, dx: float) -> dict[str, float]:
    """MSE_v ((km/s)^2), RelErr, SSIM and high-wavenumber recovery of ``v`` against the true model (empty
    without one), by the definitions of :mod:`seiscore.methods.drfwi.metrics`."""
    if v_true is None:
        return {}
    from seiscore.methods.drfwi import metrics as m

    hw = m.high_wavenumber_recovery(v, m_init, v_true, dx)
    return {
        "mse_v": float(m.model_mse(v, v_true)),
        "rel_err": float(m.relative_error(v, v_true)),
        "ssim": float(m.model_ssim(v, v_true)),
        "hw_ratio": float(hw["high_ratio"]),
        "hw_coherence": float(hw["high_coherence"]),
    }


def finish_run(plan: FWIPlan, summary: dict[str, Any], cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the output velocity store with lineage and the QC report; return the run's result."""
    from seiscore.core.lineage import DatasetRef, LineageRecord, now_iso, path_size
    from seiscore.data.velocity import VelocityGrid, write_velocity_store
    from seiscore.qc.fwi import write_fwi_report

    v = inverted_model(plan.fit_folder, summary)
    history = read_history(plan.fit_folder)
    final = history[-1] if history else {}
    metrics = {
        "iterations": len(history),
        "misfit_norm": final.get("misfit_norm"),
        **model_metrics(v, plan.m_init, plan.v_true, plan.geometry.dx),
    }
    params = json.loads(plan.spec.model_dump_json())
    record = LineageRecord(
        survey=plan.run.name,
        status="completed",
        input=DatasetRef(
            uri=str(plan.observed_path), size_bytes=path_size(plan.observed_path), content_hash=plan.observed_hash
        ),
        output=DatasetRef(uri=str(plan.output)),
        denoiser=params,
        dask_cluster=cluster or {},
        ended=now_iso(),
        metrics={k: val for k, val in metrics.items() if val is not None},
    )
    fwi = {
        "observed_hash": plan.observed_hash,
        "observed": str(plan.observed_path),
        "initial_model": plan.initial_label,
        "true_model": str(plan.true_path) if plan.true_path else None,
        "mode": plan.mode,
        "parameters": params,
        "seed": plan.seed,
        "run_folder": str(plan.run),
        "metrics": record.metrics,
    }
    dx = plan.geometry.dx
    write_velocity_store(
        plan.output, v[None], grid=VelocityGrid(dz=dx, dx=dx), names=[f"drfwi-{plan.mode}"], family=["drfwi"],
        attrs={"lineage": record.model_dump(mode="json"), "fwi": fwi}, overwrite=True,
    )  # fmt: skip
    histories, inverted, table = {}, {}, {}
    for other in MODES:  # every mode run in this folder: its curve, and its model and metrics once it finished
        folder = plan.run / f"fit-{other}"
        if other == plan.mode:
            histories[other], inverted[other], table[other] = history, v, metrics
        elif folder.is_dir() and (rows := read_history(folder)) and "misfit_norm" in rows[-1]:
            histories[other] = rows
            v_other = inverted_model(folder)
            if v_other.shape == v.shape:
                inverted[other] = v_other
                table[other] = {
                    "iterations": len(rows),
                    "misfit_norm": rows[-1].get("misfit_norm"),
                    **model_metrics(v_other, plan.m_init, plan.v_true, dx),
                }
    qc = write_fwi_report(
        plan.run / "qc" / "report.html",
        m_init=plan.m_init,
        inverted=inverted,
        dx=dx,
        v_true=plan.v_true,
        histories=histories,
        metrics=table,
        summary=[
            ("observed", plan.observed_path.name),
            ("observed hash", plan.observed_hash),
            ("initial model", plan.initial_label),
            ("mode", plan.mode),
            ("output", str(plan.output)),
        ],  # fmt: skip
        lineage=fwi,
        title=f"Velocity-model building QC: {plan.run.name} ({plan.mode})",
    )
    return {
        "mode": plan.mode,
        "run": str(plan.run),
        "output": str(plan.output),
        "metrics": metrics,
        "qc": str(qc["html"]),
        "qc_markdown": str(qc["markdown"]),
        "summary": summary,
    }


# -- the Prefect side -----------------------------------------------------------------------------------------


@flow(name="build-velocity-model", task_runner=make_task_runner(), log_prints=True)
def build_velocity_model(
    observed: str,
    run: str,
    output: str,
    initial: str = "smooth",
    initial_model: str | None = None,
    true_model: str | None = None,
    true_name: str | None = None,
    mode: Mode = "s-denorm",
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Build a velocity model from observed shots by FWI (DRFWI modes); rerun on the same run folder to resume.

    Args:
        observed: Observed shots: a shot-gather store (.zarr) or a SEG-Y shot file (.sgy).
        run: Run folder (fit checkpoints, inputs, QC); rerun on it to resume.
        output: Output velocity store (.zarr) of the inverted model, with lineage.
        initial: Initial model: a velocity store, or "smooth" / "linear" derived from true_model.
        initial_model: Name of the model in the initial store when it holds several.
        true_model: Velocity store of the true model (metrics, and the source of a derived initial model).
        true_name: Name of the model in the true store when it holds several.
        mode: grid, mean-denorm, pretrain, s-denorm (default) or a-denorm.
        params: Overrides of the drfwi parameters (e.g. {"iterations": 300, "allow_cpu": true}).
        seed: Seed of the run (same seed and folder resume identically).
    """
    from flows.fit_method import submit_and_follow
    from seiscore.core.settings import get_settings
    from seiscore.execution.fit import fit_preflight
    from seiscore.execution.resources import placement
    from seiscore.methods.registry import get_method

    logger = get_run_logger()
    settings = get_settings()
    plan = plan_run(
        observed, run, output, initial=initial, initial_model=initial_model, true_model=true_model, true_name=true_name,
        mode=mode, params=params, seed=seed, settings=settings, gpu_possible=True,
    )  # fmt: skip
    fit_preflight("drfwi", plan.fit_folder, json.loads(plan.spec.params.model_dump_json()), seed=seed,
                  settings=settings)  # fmt: skip
    prepare_inputs(plan)
    method = get_method("drfwi")
    use_resources(method.resources(plan.spec))
    cluster = describe_cluster(task_runner_client())
    resources, note = placement(method, plan.spec, cluster, has_gpu=has_resource(cluster, "GPU"))
    if note:
        if plan.work > CPU_WORK_LIMIT:
            raise RuntimeError(
                f"grid too large for the CPU workers ({plan.work:.3g} cell-samples per iteration > "
                f"{CPU_WORK_LIMIT:.3g}) and no GPU worker in the cluster"
            )
        logger.warning(note)
    summary = submit_and_follow(
        fit_fwi_task,
        plan.spec,
        plan.fit_folder,
        seed,
        resources,
        settings,
        f"drfwi {plan.mode}: inverting",
        label=plan.run.name,
    )
    result = finish_run(plan, summary, cluster)
    publish_fwi_qc(plan.run.name, result)
    logger.info(f"velocity model -> {result['output']}; QC -> {result['qc']}")
    return result
