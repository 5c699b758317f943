"""Benchmark ``drfwi``: every FWI mode from both initial models on the Marmousi-like model, at equal iterations.

    python -m seiscore.bench drfwi --quick                      # CPU: 50 x 153 cells (60 m), ~22 min
    python -m seiscore.bench drfwi                              # GPU: 150 x 460 cells (20 m), 2,000 iterations
    python -m seiscore.bench drfwi --quick --mode s-denorm --initial linear --iterations 5   # a smoke run

Modes (:mod:`seiscore.methods.drfwi.invert`): ``grid`` FWI with Adam, ``grid`` with L-BFGS (``grid-lbfgs``),
``mean-denorm``, ``pretrain``, ``s-denorm``, ``a-denorm``; initial models ``smooth`` and ``linear``
(:func:`seiscore.data.marmousi.initial_model`). All runs of one benchmark share the observed data (made with the
finer 8th-order stencil, no inverse crime), the shot mini-batches (seeded), the multiscale schedule, the bounds
and the number of iterations. Metrics (:mod:`seiscore.methods.drfwi.metrics`): MSE_v in (km/s)^2, RelErr, SSIM,
the final normalised misfit J/J0, the high-wavenumber recovery in the deep half, and the cost of an iteration
split into wave propagation (forward + adjoint) and the rest (network, optimiser, Python).

Writes ``benchmarks/results/drfwi_quick.{json,md}`` (``drfwi`` for the full run, ``drfwi_smoke`` when a mode,
initial model or iteration count is overridden) and a convergence plot ``<name>_convergence.png``. The markdown
says, per initial model, whether the paper's ordering (MSE of s-denorm below pretrain's; paper: ratio 0.825
smooth, 0.507 linear) holds here.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from seiscore.bench.common import RESULTS_DIR, md_table, write_results

MODES = ("grid", "grid-lbfgs", "mean-denorm", "pretrain", "s-denorm", "a-denorm")
INITIALS = ("smooth", "linear")
PAPER_RATIO = {"smooth": 0.1517 / 0.1839, "linear": 0.2002 / 0.3945}


@dataclass(frozen=True)
class SurveySetup:
    """The synthetic acquisition of a benchmark (or of ``seis fwi make-data``)."""

    spacing: float = 60.0  # m
    n_shots: int = 12
    record_s: float = 2.4
    dt: float = 0.004
    peak_frequency: float = 4.0  # 1500 m/s / 4 Hz = 6.25 cells of 60 m per wavelength (deepwave asks for >= 6)
    seed: int = 0
    noise_db: float | None = None


QUICK = SurveySetup()
FULL = SurveySetup(spacing=20.0, n_shots=40, record_s=4.0, dt=0.002, peak_frequency=5.0)


def synthetic_survey(setup: SurveySetup, device: str = "cpu"):
    """``(v_true (nz, nx) f32, VelocityGrid, Geometry, observed (shots, rx, nt) f32)``: the Marmousi-like model at
    ``setup.spacing``, surface sources and a receiver at every cell one cell deep, a Ricker source, and the
    observed data modelled with the 8th-order stencil (optional noise) on ``device``."""
    from seiscore.data.marmousi import marmousi_like
    from seiscore.data.shots import Geometry
    from seiscore.methods.drfwi.engine import observe

    v_true, grid = marmousi_like(spacing=setup.spacing, seed=setup.seed)
    v_true = np.asarray(v_true, np.float32)
    nz, nx = v_true.shape
    nt = int(round(setup.record_s / setup.dt))
    geometry = Geometry.surface(
        nz, nx, setup.spacing, n_shots=setup.n_shots, dt=setup.dt, nt=nt, peak_frequency=setup.peak_frequency
    )
    observed = observe(v_true, geometry, accuracy=8, noise_db=setup.noise_db, seed=setup.seed, device=device)
    return v_true, grid, geometry, np.asarray(observed, np.float32)


def inversion_config(mode: str, iterations: int, *, quick: bool, device: str, seed: int = 0, **overrides):
    """The :class:`~seiscore.methods.drfwi.invert.InversionConfig` of one benchmark run (``grid-lbfgs``: the grid
    mode with L-BFGS); the same schedule, shots and bounds for every mode."""
    from seiscore.methods.drfwi.config import InversionConfig

    base: dict[str, Any] = {
        "mode": "grid" if mode.startswith("grid") else mode,
        "iterations": iterations,
        "shots_per_iteration": 4 if quick else 8,
        "seed": seed,
        "device": device,
    }
    if mode == "grid-lbfgs":
        base["optimizer"] = "lbfgs"
    if mode == "pretrain" and quick:
        base["pretrain_steps"] = 300
    if quick:
        base["width"] = 128
        # the gradient's time integral sampled every 5th step (4 ms x 5 = 20 ms, within deepwave's limit for a
        # 4 Hz Ricker): measured ~3x faster with gradients within 5 %
        base["gradient_sampling_interval"] = 5
    base.update(overrides)
    return InversionConfig(**base)


def run_one(observed, geometry, m_init, v_true, mode: str, iterations: int, *, quick: bool, device: str):
    """Invert once; return (model, history, row of metrics and costs)."""
    from seiscore.methods.drfwi import metrics as M
    from seiscore.methods.drfwi.invert import invert

    config = inversion_config(mode, iterations, quick=quick, device=device)
    t0 = time.perf_counter()
    result = invert(observed, geometry, m_init, config, v_true=v_true)
    wall = time.perf_counter() - t0
    history = [dict(h) for h in result.history]
    v = np.asarray(result.model, np.float32)
    n = max(len(history), 1)
    prop = sum(float(h.get("propagation_s") or 0.0) for h in history) / n
    secs = sum(float(h.get("seconds") or 0.0) for h in history) / n
    net = sum(float(h.get("network_s") or 0.0) for h in history) / n
    hw = M.high_wavenumber_recovery(v, m_init, v_true, geometry.dx)
    first = history[0] if history else {}
    own = (
        float(np.mean([h["misfit_norm"] for h in history[-5:]]) / float(history[0]["misfit_norm"]))
        if history
        else float("nan")
    )
    row = {
        "mode": mode,
        "iterations": len(history),
        "mse_v_init": float(M.model_mse(m_init, v_true)),
        "mse_v": float(M.model_mse(v, v_true)),
        "rel_err": float(M.relative_error(v, v_true)),
        "ssim": float(M.model_ssim(v, v_true)),
        "misfit_norm": float(history[-1]["misfit_norm"]) if history else float("nan"),
        "misfit_norm_first": float(history[0]["misfit_norm"]) if history else float("nan"),
        # the run's own drop: the mean J/J0 of the last 5 iterations over its first iteration's (each row is
        # normalised by J(m_init) on its own mini-batch, so rows of different batches compare). A run that does
        # not start at m_init (mean-denorm: a random network) is judged on its own start, not on J(m_init).
        "misfit_own": own,
        "misfit_lowered": bool(own < 0.99),
        "hw_ratio": float(hw["high_ratio"]),
        "hw_coherence": float(hw["high_coherence"]),
        "s_per_iter": secs,
        "propagation_s": prop,
        "network_s": net,
        "other_s": max(secs - prop - net, 0.0),
        "wall_s": wall,
        "first_mse_v": first.get("mse_v"),
        "summary": {k: v for k, v in (result.summary or {}).items() if isinstance(v, (int, float, str, bool))},
    }
    return v, history, row


# Cost of an iteration relative to the measured mode (grid Adam for the grid modes, s-denorm for the network
# modes): L-BFGS's strong-Wolfe line search re-propagates (1-2 evaluations an iteration, more at the first).
COST_FACTOR = {"grid-lbfgs": 2.0}


def measure_cost(observed, geometry, m_init, v_true, *, quick: bool, device: str, iterations: int = 5) -> dict:
    """Seconds per iteration of grid FWI and of s-denorm (``iterations`` each; the first, a warm-up with the
    one-off start-up costs, left out: the median of the rest) and the fixed cost of a run (its J(m_init) pass,
    set-up): the basis of the iteration count that fits the time budget."""
    costs = {}
    for mode in ("grid", "s-denorm"):
        _, history, row = run_one(observed, geometry, m_init, v_true, mode, iterations, quick=quick, device=device)
        costs[mode] = {k: row[k] for k in ("propagation_s", "network_s", "wall_s")}
        costs[mode]["s_per_iter"] = float(np.median([h["seconds"] for h in history[1:]] or [row["s_per_iter"]]))
        costs[mode]["fixed_s"] = max(row["wall_s"] - iterations * costs[mode]["s_per_iter"], 0.0)
    return costs


def fit_iterations(costs: dict, modes, n_inits: int, budget_s: float, pretrain_s: float) -> int:
    """The most iterations (10..300) that let every run of ``modes`` x ``n_inits`` starts fit in ``budget_s``
    (each mode priced at its own measured iteration: grid modes at grid's, network modes at s-denorm's)."""
    per_it = sum(
        COST_FACTOR.get(m, 1.0) * costs["grid" if m.startswith("grid") else "s-denorm"]["s_per_iter"] for m in modes
    )
    fixed = max(c["fixed_s"] for c in costs.values())
    spare = budget_s - n_inits * len(modes) * fixed - n_inits * pretrain_s * ("pretrain" in modes)
    return int(min(300, max(10, spare / (1.1 * n_inits * per_it))))


def convergence_plot(histories: dict[str, dict[str, list[dict]]], path) -> None:
    """J/J0 (top) and MSE_v (bottom) against iteration, one column per initial model, one curve per mode."""
    from matplotlib.figure import Figure

    inits = list(histories)
    fig = Figure(figsize=(5.5 * len(inits), 7.0), dpi=90)
    axes = fig.subplots(2, len(inits), squeeze=False)
    for col, init in enumerate(inits):
        for mode, hist in histories[init].items():
            it = [h["iteration"] for h in hist]
            axes[0, col].plot(it, [h["misfit_norm"] for h in hist], label=mode)
            if hist and hist[0].get("mse_v") is not None:
                axes[1, col].plot(it, [h.get("mse_v") for h in hist], label=mode)
        axes[0, col].set_title(f"{init} start: normalised misfit", fontsize=10)
        axes[1, col].set_title(f"{init} start: MSE_v (km/s)^2", fontsize=10)
        for ax in axes[:, col]:
            ax.set_yscale("log")
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3, which="both")
        axes[0, col].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")


def ordering_lines(rows: list[dict]) -> list[str]:
    """Per initial model: does s-denorm reach a lower MSE_v than pretrain (the paper's claim)? And vs grid."""
    lines = []
    for init in INITIALS:
        by = {r["mode"]: r for r in rows if r["initial"] == init}
        if "s-denorm" in by and "pretrain" in by:
            ratio = by["s-denorm"]["mse_v"] / by["pretrain"]["mse_v"]
            holds = "holds" if ratio < 1.0 else "does NOT hold"
            lines.append(
                f"- {init} start: MSE(s-denorm)/MSE(pretrain) = {ratio:.3f} (paper {PAPER_RATIO[init]:.3f}): "
                f"the paper's ordering {holds} here."
            )
        if "s-denorm" in by and "grid" in by:
            ratio = by["s-denorm"]["mse_v"] / by["grid"]["mse_v"]
            lines.append(f"- {init} start: MSE(s-denorm)/MSE(grid Adam) = {ratio:.3f}.")
        lowered = [m for m, r in by.items() if r["misfit_lowered"]]
        if by:
            not_lowered = sorted(set(by) - set(lowered))
            lines.append(
                f"- {init} start: data misfit lowered on each run's own start (mean J/J0 of the last 5 iterations "
                f">= 1 % below the run's first iteration's; mean-denorm starts from a random network, far above "
                f"J(m_init)) by {len(lowered)} of {len(by)} modes"
                + (f" (not: {', '.join(not_lowered)})" if not_lowered else "")
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.bench drfwi", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="CPU configuration: 50 x 153 cells, 4 shots/iteration, ~22 min"
    )
    ap.add_argument("--mode", action="append", choices=MODES, help="only this mode (repeatable; default all)")
    ap.add_argument("--initial", action="append", choices=INITIALS, help="only this initial model (default both)")
    ap.add_argument(
        "--iterations",
        type=int,
        help="iterations per run (default: full 2000; quick: as many as fit --budget, measured first, <= 300)",
    )
    ap.add_argument("--budget", type=float, default=22.0, help="quick: minutes the whole run may take (default 22)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available and not --quick)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: deepwave's OpenMP threads do not inherit flush-denormal, 2+ threads "
        "measured 5-10x slower here)",
    )
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    setup = QUICK if args.quick else FULL
    modes = tuple(args.mode or MODES)
    inits = tuple(args.initial or INITIALS)
    smoke = bool(args.mode or args.initial or args.iterations)
    name = "drfwi_smoke" if smoke else ("drfwi_quick" if args.quick else "drfwi")

    from seiscore.data.marmousi import initial_model
    from seiscore.methods.drfwi import metrics as M

    t0 = time.perf_counter()
    v_true, grid, geometry, observed = synthetic_survey(setup)
    t_data = time.perf_counter() - t0
    print(f"model {v_true.shape[0]} x {v_true.shape[1]} at {setup.spacing:g} m, {geometry.n_shots} shots, "
          f"nt {geometry.nt}; observed in {t_data:.1f} s; {len(modes)} modes x {len(inits)} starts on {device}",
          flush=True)  # fmt: skip
    costs = None
    iterations = args.iterations or 2000
    if args.quick and not args.iterations:
        m0 = np.asarray(initial_model(v_true, kind="smooth", dx=setup.spacing), np.float32)
        costs = measure_cost(observed, geometry, m0, v_true, quick=True, device=device)
        pretrain_s = 40.0  # stage 1 (300 L1 steps of the SIREN), measured 35-40 s here
        left = args.budget * 60.0 - (time.perf_counter() - t0)
        iterations = fit_iterations(costs, modes, len(inits), left, pretrain_s)
        print(f"measured {json.dumps(costs)}; {iterations} iterations per run fit the budget", flush=True)
    rows: list[dict] = []
    histories: dict[str, dict[str, list[dict]]] = {}
    starts = {}
    for init in inits:
        m_init = np.asarray(initial_model(v_true, kind=init, dx=setup.spacing), np.float32)
        starts[init] = float(M.model_mse(m_init, v_true))
        histories[init] = {}
        for mode in modes:
            _, history, row = run_one(
                observed, geometry, m_init, v_true, mode, iterations, quick=args.quick, device=device
            )
            row["initial"] = init
            rows.append(row)
            histories[init][mode] = [
                {k: h.get(k) for k in ("iteration", "misfit_norm", "mse_v", "seconds")} for h in history
            ]
            print(f"{init:>6} {mode:<11} MSE_v {row['mse_v_init']:.4f} -> {row['mse_v']:.4f}  J/J0 "
                  f"{row['misfit_norm']:.3f}  {row['s_per_iter']:.2f} s/it (prop {row['propagation_s']:.2f}, "
                  f"net {row['network_s']:.2f})  wall {row['wall_s']:.0f} s", flush=True)  # fmt: skip
    total = time.perf_counter() - t0
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    plot = RESULTS_DIR / f"{name}_convergence.png"
    convergence_plot(histories, plot)
    columns = [
        ("initial", "initial"), ("mode", "mode"), ("iterations", "it"), ("mse_v_init", "MSE_v start"),
        ("mse_v", "MSE_v"), ("rel_err", "RelErr"), ("ssim", "SSIM"), ("misfit_norm_first", "J/J0 first"),
        ("misfit_norm", "J/J0"), ("misfit_own", "J/J(it 0)"),
        ("hw_ratio", "HW ratio"), ("hw_coherence", "HW coh."), ("s_per_iter", "s/it"),
        ("propagation_s", "prop s/it"), ("network_s", "net s/it"), ("other_s", "other s/it"),
    ]  # fmt: skip
    table = md_table([h for _, h in columns], [[r[k] for k, _ in columns] for r in rows])
    s_rows = [r for r in rows if r["mode"] == "s-denorm" and r.get("first_mse_v") is not None]
    start_line = (
        "- s-denorm at iteration 0: MSE_v "
        + ", ".join(f"{r['initial']} {r['first_mse_v']:.5f} (initial model {r['mse_v_init']:.5f})" for r in s_rows)
        if s_rows
        else ""
    )
    md = "\n".join(
        [
            f"# DRFWI benchmark ({'quick, CPU' if args.quick else 'full'}; device {device}, {args.threads} threads)",
            "",
            f"Command: `python -m seiscore.bench drfwi {' '.join(argv if argv is not None else [])}`".rstrip(),
            "",
            f"Marmousi-like model {v_true.shape[0]} x {v_true.shape[1]} cells at {setup.spacing:g} m; "
            f"{geometry.n_shots} surface shots, receivers at every cell, Ricker {setup.peak_frequency:g} Hz, "
            f"{setup.record_s:g} s at dt {setup.dt * 1000:g} ms; observed with the 8th-order stencil, inverted "
            f"with the 4th; {iterations} iterations per run; total {total / 60:.1f} min.",
            "",
            table,
            "",
            "MSE_v in (km/s)^2; J/J0 = last iteration's mini-batch misfit / the initial model's on the same shots; "
            "J/J(it 0) = the run's own drop: mean J/J0 of the last 5 iterations / its first iteration's J/J0 (below "
            "1: the run lowered its misfit); "
            "HW ratio / HW coh. = spectral power ratio / coherence of (v - m_init) against (v_true - m_init) above "
            "0.5 k_Nyquist in the deep half (1 = all the true detail, in phase); s/it split into wave propagation "
            "(forward + adjoint), network (SIREN forward + backward) and the rest (optimiser, Python).",
            "",
            "## Paper's ordering",
            "",
            *ordering_lines(rows),
            start_line,
            "",
            f"![convergence]({plot.name})",
        ]
    )
    payload = {
        "quick": args.quick,
        "device": device,
        "setup": setup.__dict__,
        "iterations": iterations,
        "grid": list(v_true.shape),
        "initial_mse_v": starts,
        "rows": rows,
        "histories": histories,
        "seconds_total": total,
        "seconds_data": t_data,
        "cost_calibration": costs,
    }
    json_path, md_path = write_results(name, payload, md)
    print(md)
    print(f"wrote {json_path}, {md_path}, {plot}")
    return 0
