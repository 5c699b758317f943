"""DRFWI inversion: :func:`invert` runs one mode of :class:`InversionConfig` on observed shot gathers.

One iteration (every mode, the same schedule):

1. shots: a random mini-batch of ``shots_per_iteration`` shots, drawn from a generator seeded by
   ``(seed, iteration)`` (the same batches however often the run stopped and resumed);
2. ``v = model.velocity()`` (:mod:`.parameterisation`, clamped to the bounds);
3. ``J = loss_scale * 1/2 sum (L_c F(v) - L_c d_obs)^2`` over the batch, ``L_c`` the zero-phase Butterworth
   low-pass of the current multiscale stage (:func:`.engine.lowpass`, identical for all modes; the iterations
   are split evenly between the stages of ``frequencies``);
4. the gradient in two measured halves: ``dJ/dv`` through deepwave (propagation: forward + adjoint), then
   ``dJ/dTheta = (dv/dTheta)^T dJ/dv`` through the network (network: its forward + backward); grid mode clips
   ``|dJ/dv|`` at its ``clip_quantile`` quantile;
5. an Adam step (L-BFGS with strong-Wolfe line search for grid: the closure re-evaluates 2-4 on the same batch).

``pretrain`` first fits the network to ``m_init`` (L1 on the velocity, :func:`.parameterisation.pretrain`).

History (one row per iteration, the model *before* that iteration's update): ``iteration``, ``stage``,
``cutoff_hz``, ``misfit`` (J of the batch), ``misfit_norm`` (J / J(m_init) on the same shots and band, J(m_init)
computed once per stage for every shot), ``seconds`` (wall time of the iteration), ``propagation_s``,
``network_s`` (the split of step 4 plus the network's forward), ``elapsed_s``, and with a true model
``mse_v`` / ``rel_err`` (every iteration) and ``ssim`` (every ``metrics_every``).

With a :class:`~seiscore.execution.fit.FitRun`: checkpoints (phase ``invert``: parameters, optimiser, iteration,
history, J(m_init) table, plasticity accumulators; phase ``pretrain``: stage 1's result) every
``checkpoint_every`` iterations, so a rerun resumes and produces identical iterates; FitStart / FitStep
(per iteration, loss = misfit) / FitEpoch (per phase) events.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from seiscore.data.shots import Geometry
from seiscore.execution.fit import FitEpoch, FitRun, FitStart, FitStep, seeded_generator
from seiscore.methods.drfwi import engine
from seiscore.methods.drfwi import metrics as M
from seiscore.methods.drfwi.config import InversionConfig
from seiscore.methods.drfwi.parameterisation import Parameterisation, build, pretrain

__all__ = ["InversionConfig", "InversionResult", "invert"]
PHASE, PRETRAIN_PHASE = "invert", "pretrain"
BATCH_STREAM, J0_STREAM = 1, 2  # generator streams (seed, stream, iteration)


@dataclass
class InversionResult:
    """An inversion's outcome: the model (float32 ``(nz, nx)`` m/s), one history row per iteration, a summary
    (final metrics, timings, plasticity), and the parameterisation's tensors (``state``: for the artifact)."""

    model: np.ndarray
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    state: dict[str, torch.Tensor] = field(default_factory=dict)


def _flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).cpu() for p in params]) if params else torch.zeros(0)


def _flat_grad(params) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1) for p in params])


def _peak_memory(device: torch.device) -> int:
    """Peak memory: CUDA's allocated maximum on a GPU, the process's maximum resident set on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _clip_quantile(g: torch.Tensor, q: float) -> torch.Tensor:
    """``g`` with magnitudes above the ``q`` quantile of ``|g|`` clipped to it (sign kept)."""
    a = g.abs().reshape(-1)
    if a.numel() > 16_000_000:  # torch.quantile's limit
        a = a[:: math.ceil(a.numel() / 16_000_000)]
    top = torch.quantile(a, q)
    return torch.clamp(g, -top, top) if top > 0 else g


def _check_inputs(observed, geometry: Geometry, m_init, config: InversionConfig, v_true):
    obs = engine.check_data(observed, geometry)
    engine.check_velocity(np.asarray(m_init), geometry, "initial model")
    m = np.array(m_init, dtype=np.float64)
    lo, hi = config.bounds
    if m.min() < lo or m.max() > hi:
        raise engine.EngineError(
            f"initial model ranges {m.min():g}..{m.max():g} m/s, outside the bounds {lo:g}..{hi:g} m/s"
        )
    if v_true is not None:
        engine.check_velocity(np.asarray(v_true), geometry, "true model")
    engine.check_cfl(hi, geometry.dx, geometry.dt)
    if config.gradient_sampling_interval != 1:
        engine.check_gradient_sampling(geometry, config.gradient_sampling_interval)
    if config.shots_per_iteration > geometry.n_shots:
        raise engine.EngineError(
            f"shots_per_iteration={config.shots_per_iteration} but the data hold {geometry.n_shots} shots"
        )
    return obs, m


class _Inversion:
    """The state and steps of one inversion (see the module docstring)."""

    def __init__(self, observed, geometry, m_init, config: InversionConfig, v_true, run: FitRun | None, callback):
        self.cfg, self.geometry, self.run, self.callback = config, geometry, run, callback
        self.device = torch.device(config.device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        obs, m = _check_inputs(observed, geometry, m_init, config, v_true)
        self.m_init_np = m.astype(np.float32)
        self.v_true = None if v_true is None else np.array(v_true, dtype=np.float32)
        self.obs = torch.tensor(obs, dtype=self.dtype, device=self.device)
        self.m_init = torch.tensor(m, dtype=self.dtype, device=self.device)
        self.model: Parameterisation = build(config, m, device=self.device)
        self.stages = config.stages()
        self._obs_f: dict[int, torch.Tensor] = {}
        self.fwd_kw = dict(
            accuracy=config.accuracy,
            pml_width=config.pml_width,
            storage=config.storage,
            storage_compression=config.storage_compression,
            checkpoint_segments=config.checkpoint_segments,
            gradient_sampling_interval=config.gradient_sampling_interval,
            max_vel=config.bounds[1],
            check=False,
        )
        self.net_params = self.model.network_parameters()
        self.opt = self._optimizer()
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self.j0: dict[int, np.ndarray] = {}
        self.max_ratio = torch.zeros(sum(p.numel() for p in self.net_params), dtype=torch.float64)
        self.w_start = _flat(self.net_params)
        self.pretrain_info: dict[str, Any] = {}
        self.elapsed = 0.0

    # -- pieces ----------------------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        if cfg.optimizer == "lbfgs":
            # J is normalised (J / J(m_init) of the fixed shots) and the tolerances are off: torch's defaults
            # (|g|_max <= 1e-7) silently skipped every step of a misfit whose gradient is tiny in m/s units. lr 1
            # (a unit quasi-Newton step) from iteration 1 on; iteration 0's lr is set by :meth:`step`.
            return torch.optim.LBFGS(
                self.model.parameters(), lr=1.0, max_iter=1, history_size=10, line_search_fn="strong_wolfe",
                tolerance_grad=0.0, tolerance_change=0.0,
            )  # fmt: skip
        return torch.optim.Adam(self.model.param_groups(cfg.learning_rate, cfg.background_lr))

    def warmup(self, it: int) -> None:
        """Adam's lr of iteration ``it``: ramped linearly over the first ``warmup_iterations`` (network modes; at
        most a tenth of the run). Adam's first steps move every weight by ~lr whatever its gradient: without the
        ramp the misfit of the network modes jumped 2-5x at iteration 1 (benchmark; toy: s-denorm 1.68 -> 0.60)."""
        w = min(self.cfg.warmup_iterations, self.cfg.iterations // 10) if self.cfg.is_network else 0
        factor = min(1.0, (it + 1) / w) if w > 0 else 1.0
        for group, base in zip(self.opt.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def stage_of(self, it: int) -> int:
        """The multiscale stage of iteration ``it``."""
        return next(i for i, (a, b, _) in enumerate(self.stages) if a <= it < b)

    def observed(self, stage: int) -> torch.Tensor:
        """The observed data low-passed for ``stage`` (cached)."""
        if stage not in self._obs_f:
            cutoff = self.stages[stage][2]
            self._obs_f[stage] = engine.lowpass(self.obs, self.geometry.dt, cutoff, self.cfg.filter_order)
        return self._obs_f[stage]

    def batch(self, it: int) -> np.ndarray:
        """The sorted shot indices of iteration ``it`` (a generator seeded by seed and iteration). L-BFGS: the same
        ``shots_per_iteration`` shots, spread evenly, every iteration (its curvature pairs need one objective)."""
        if self.cfg.optimizer == "lbfgs":
            n, k = self.geometry.n_shots, self.cfg.shots_per_iteration
            return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))
        gen = seeded_generator(self.cfg.seed, BATCH_STREAM, it)
        perm = torch.randperm(self.geometry.n_shots, generator=gen)[: self.cfg.shots_per_iteration]
        return np.sort(perm.numpy())

    def misfit_init(self, stage: int) -> np.ndarray:
        """J(m_init) of every shot in the band of ``stage`` (computed once, in batches, no gradient)."""
        if stage not in self.j0:
            cutoff, k = self.stages[stage][2], self.cfg.shots_per_iteration
            out = []
            with torch.no_grad():
                for start in range(0, self.geometry.n_shots, k):
                    shots = np.arange(start, min(start + k, self.geometry.n_shots))
                    kw = {**self.fwd_kw, "storage": "none", "gradient_sampling_interval": 1}
                    pred = engine.forward(self.m_init, self.geometry, shots, **kw)
                    pred = engine.lowpass(pred, self.geometry.dt, cutoff, self.cfg.filter_order)
                    obs = self.observed(stage)[torch.as_tensor(shots, device=self.device)]
                    out.append(self.cfg.loss_scale * engine.per_shot_misfit(pred, obs))
            self.j0[stage] = torch.cat(out).cpu().double().numpy()
        return self.j0[stage]

    def evaluate(
        self, shots: np.ndarray, stage: int, weight: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        """``(J, v)`` with the gradients of ``weight * J`` accumulated in the parameters, and the (propagation,
        network) seconds."""
        clock = self.clock
        t0 = clock()
        v = self.model.velocity()
        t1 = clock()
        if not bool(torch.isfinite(v.detach()).all()):
            raise engine.EngineError(f"the {self.cfg.mode} model holds NaN velocities at iteration {self.iteration}")
        v_leaf = v.detach().requires_grad_(True)
        pred = engine.forward(v_leaf, self.geometry, shots, **self.fwd_kw)
        pred = engine.lowpass(pred, self.geometry.dt, self.stages[stage][2], self.cfg.filter_order)
        index = torch.as_tensor(shots, device=self.device)
        j = engine.misfit(pred, self.observed(stage)[index], scale=self.cfg.loss_scale)
        (j * weight).backward()
        grad = v_leaf.grad
        clip = self.cfg.clip_quantile is not None and self.cfg.clip_quantile < 1
        # not for L-BFGS: its line search needs the true gradient of the J it is given
        if self.cfg.mode == "grid" and clip and self.cfg.optimizer == "adam":
            grad = _clip_quantile(grad, self.cfg.clip_quantile)
        t2 = clock()
        v.backward(grad)
        t3 = clock()
        return j.detach(), v.detach(), t2 - t1, (t1 - t0) + (t3 - t2)

    def clock(self) -> float:
        """Wall time after the device finished its queued work (CUDA is asynchronous)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def emit(self, event) -> None:
        if self.run is not None:
            self.run.emit(event)

    # -- state -------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a checkpoint holds."""
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "iteration": self.iteration,
            "history": list(self.history),
            "j0": {k: v.copy() for k, v in self.j0.items()},
            "max_ratio": self.max_ratio.clone(),
            "w_start": self.w_start.clone(),
            "pretrain": dict(self.pretrain_info),
            "elapsed": self.elapsed,
        }

    def load(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.iteration = int(state["iteration"])
        self.history = list(state["history"])
        self.j0 = dict(state["j0"])
        self.max_ratio = state["max_ratio"].clone()
        self.w_start = state["w_start"].clone()
        self.pretrain_info = dict(state["pretrain"])
        self.elapsed = float(state["elapsed"])

    def checkpoint(self) -> None:
        if self.run is not None:
            self.run.checkpoint(PHASE, self.state(), self.iteration)

    # -- phases ------------------------------------------------------------------------------------------------
    def stage_one(self) -> None:
        """Pretrain's stage 1 (resumed from its checkpoint when there is one)."""
        cfg = self.cfg
        done = self.run.resume(PRETRAIN_PHASE, map_location=self.device) if self.run is not None else None
        if done is not None:
            self.model.load_state_dict(done["state"]["model"])
            self.pretrain_info = dict(done["state"]["info"])
        else:
            self.emit(FitStart(phase=PRETRAIN_PHASE, epochs=1, steps=cfg.pretrain_steps))
            t0 = time.perf_counter()

            def on_step(step: int, l1: float, rel: float) -> None:
                self.emit(FitStep(phase=PRETRAIN_PHASE, epoch=0, step=step, steps=cfg.pretrain_steps, loss=l1))

            steps, rel = pretrain(
                self.model, self.m_init, steps=cfg.pretrain_steps, lr=cfg.pretrain_lr, tol=cfg.pretrain_tol,
                on_step=on_step if self.run is not None else None,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            self.pretrain_info = {
                "steps": steps,
                "rel_err": rel,
                "seconds": seconds,
                "converged": rel < cfg.pretrain_tol,
            }
            self.emit(FitEpoch(phase=PRETRAIN_PHASE, epoch=0, metrics=dict(self.pretrain_info), seconds=seconds))
            if self.run is not None:
                state = {"model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}}
                self.run.checkpoint(PRETRAIN_PHASE, {**state, "info": self.pretrain_info}, steps)
        self.w_start = _flat(self.net_params)

    def step(self) -> dict[str, Any]:
        """One iteration; returns its history row."""
        cfg, it = self.cfg, self.iteration
        stage = self.stage_of(it)
        shots = self.batch(it)
        j0 = float(self.misfit_init(stage)[shots].sum())
        t0 = time.perf_counter()
        timing = {"propagation_s": 0.0, "network_s": 0.0}
        first: dict[str, Any] = {}

        lbfgs = cfg.optimizer == "lbfgs"
        weight = 1.0 / j0 if lbfgs and j0 > 0 else 1.0  # L-BFGS minimises J / J(m_init): order 1
        cached: list[torch.Tensor] = []

        def closure():
            if cached:  # iteration 0 of L-BFGS: J and its gradient at the start, evaluated below
                return cached.pop()
            self.opt.zero_grad(set_to_none=False)
            j, v, prop, net = self.evaluate(shots, stage, weight)
            timing["propagation_s"] += prop
            timing["network_s"] += net
            first.setdefault("j", float(j))
            first.setdefault("v", v)
            return j * weight

        if lbfgs:
            if "n_iter" not in self.opt.state[self.opt._params[0]]:
                # torch's first step is lr * g / |g|_1 (then Wolfe extrapolates by at most 10x per evaluation):
                # lr such that it changes the largest cell by cfg.learning_rate m/s, whatever the units of J
                cached.append(closure())
                g = _flat_grad(self.opt._params)
                self.opt.param_groups[0]["lr"] = cfg.learning_rate * float(
                    max(g.abs().sum(), 1.0) / g.abs().max().clamp_min(1e-30)
                )
            self.opt.step(closure)
            self.opt.param_groups[0]["lr"] = 1.0
        else:
            self.warmup(it)
            closure()
            if self.net_params and it >= cfg.iterations - cfg.plasticity_window:
                ratio = torch.as_tensor(M.gradient_ratio(_flat_grad(self.net_params).double().cpu().numpy()))
                self.max_ratio = torch.maximum(self.max_ratio, ratio)
            self.opt.step()
        seconds = time.perf_counter() - t0
        self.elapsed += seconds
        row = {
            "iteration": it,
            "stage": stage,
            "cutoff_hz": self.stages[stage][2],
            "shots": shots.tolist(),
            "misfit": first["j"],
            "misfit_norm": first["j"] / j0 if j0 > 0 else float("nan"),
            "seconds": seconds,
            "propagation_s": timing["propagation_s"],
            "network_s": timing["network_s"],
            "elapsed_s": self.elapsed,
        }
        if self.v_true is not None:
            v = first["v"].cpu().numpy()
            ssim = it % cfg.metrics_every == 0 or it == cfg.iterations - 1
            row.update(M.model_metrics(v, self.v_true, ssim=ssim))
        return row

    def run_all(self) -> InversionResult:
        cfg = self.cfg
        resumed = self.run.resume(PHASE, map_location=self.device) if self.run is not None else None
        if resumed is not None:
            self.load(resumed["state"])
        elif cfg.mode == "pretrain":
            self.stage_one()
        self.emit(FitStart(phase=PHASE, epochs=1, start_epoch=0, steps=cfg.iterations))
        while self.iteration < cfg.iterations:
            row = self.step()
            self.history.append(row)
            self.iteration += 1
            self.emit(FitStep(phase=PHASE, epoch=0, step=self.iteration, steps=cfg.iterations, loss=row["misfit"]))
            if self.callback is not None:
                self.callback(row)
            if self.iteration % cfg.checkpoint_every == 0 or self.iteration == cfg.iterations:
                self.checkpoint()
        return self.result()

    def result(self) -> InversionResult:
        cfg = self.cfg
        with torch.no_grad():
            v = self.model.velocity().detach().cpu().numpy().astype(np.float32)
        hist = self.history
        secs = np.array([r["seconds"] for r in hist]) if hist else np.zeros(1)
        summary: dict[str, Any] = {
            "mode": cfg.mode,
            "optimizer": cfg.optimizer,
            "iterations": len(hist),
            "misfit_first": hist[0]["misfit"] if hist else None,
            "misfit_last": hist[-1]["misfit"] if hist else None,
            "misfit_norm_last": hist[-1]["misfit_norm"] if hist else None,
            "seconds_per_iteration": float(np.median(secs)),
            "propagation_s_per_iteration": float(np.median([r["propagation_s"] for r in hist])) if hist else 0.0,
            "network_s_per_iteration": float(np.median([r["network_s"] for r in hist])) if hist else 0.0,
            "elapsed_s": self.elapsed,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "network_parameters": int(sum(p.numel() for p in self.net_params)),
            "cfl_substeps": engine.check_cfl(cfg.bounds[1], self.geometry.dx, self.geometry.dt),
        }
        summary["internal_steps"] = summary["cfl_substeps"] * self.geometry.nt
        summary["peak_memory_bytes"] = _peak_memory(self.device)
        if cfg.mode == "pretrain":
            summary["pretrain"] = dict(self.pretrain_info)
        if self.net_params:
            window = min(cfg.plasticity_window, cfg.iterations)
            if cfg.optimizer == "adam":
                summary["plasticity_inactive_fraction"] = M.inactive_fraction(self.max_ratio.numpy())
            summary["plasticity_window"] = window
            summary["weight_cosine"] = M.weight_cosine(self.w_start.numpy(), _flat(self.net_params).numpy())
        if self.v_true is not None:
            final = M.model_metrics(v, self.v_true)
            summary.update({f"final_{k}": val for k, val in final.items()})
            summary.update({f"initial_{k}": val for k, val in M.model_metrics(self.m_init_np, self.v_true).items()})
            hw = M.high_wavenumber_recovery(v, self.m_init_np, self.v_true, self.geometry.dx)
            summary["high_ratio"], summary["high_coherence"] = hw["high_ratio"], hw["high_coherence"]
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        return InversionResult(model=v, history=list(hist), summary=summary, state=state)


def invert(
    observed: np.ndarray,
    geometry: Geometry,
    m_init: np.ndarray,
    config: InversionConfig,
    run: FitRun | None = None,
    v_true: np.ndarray | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> InversionResult:
    """Invert ``observed (shots, receivers, nt)`` recorded with ``geometry`` from ``m_init (nz, nx)`` m/s with
    ``config`` (see the module docstring). ``run``: checkpoints, resume and events; ``v_true``: model metrics in
    the history; ``callback(row)`` after every iteration. Inputs are never modified; each bad input is a
    one-line ``ValueError``."""
    previous = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        with engine.denormals_flushed(config.device or "cpu"):
            return _Inversion(observed, geometry, m_init, config, v_true, run, callback).run_all()
    finally:
        torch.set_num_threads(previous)
