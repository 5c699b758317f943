"""The configuration of a DRFWI inversion (torch-free, so the method registry can import it).

Defaults follow the spec (DRFWI.md §2.4): Adam with lr 1e-4 on the network weights, 10 m/s per step on a grid,
SIREN 4 x 256 with omega_0 30, S = 1000 m/s, bounds [1400, 5000] m/s, inversion stencil accuracy 4,
pretraining (L1 on the velocity) until the mean relative error is below 0.5 % or 5000 steps.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MODES: tuple[str, ...] = ("grid", "mean-denorm", "pretrain", "s-denorm", "a-denorm")
Mode = Literal["grid", "mean-denorm", "pretrain", "s-denorm", "a-denorm"]
# Adam learning rates by what is optimised: network weights (dimensionless) or velocities (m/s per step).
NETWORK_LR, GRID_LR = 1e-4, 10.0


class InversionConfig(BaseModel):
    """Every setting of one inversion; a resumed run must use the same ones (``device`` / ``threads`` aside)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "s-denorm"
    optimizer: Literal["adam", "lbfgs"] = Field("adam", description="lbfgs (strong Wolfe) only for mode grid")
    iterations: int = Field(300, ge=1)
    shots_per_iteration: int = Field(5, ge=1, description="random mini-batch of shots per iteration")
    lr: float | None = Field(
        None,
        gt=0,
        description=f"None: {NETWORK_LR:g} for a network, {GRID_LR:g} m/s for grid (L-BFGS: the first step's)",
    )
    width: int = Field(256, ge=1)
    hidden: int = Field(4, ge=0)
    omega_0: float = Field(30.0, gt=0)
    scale: float | Literal["std"] = Field(1000.0, description="S (m/s), or 'std' for the std of m_init")
    bounds: tuple[float, float] = Field((1400.0, 5000.0), description="v clamped to [vmin, vmax] m/s")
    frequencies: tuple[float | None, ...] = Field(
        (None,), description="low-pass cut-off (Hz) of each multiscale stage, None = full band; same for all modes"
    )
    filter_order: int = Field(6, ge=1)
    accuracy: Literal[2, 4, 6, 8] = 4
    pml_width: int = Field(20, ge=0)
    background_lr: float = Field(10.0, gt=0, description="a-denorm: Adam lr of the background update (m/s)")
    background_sigma: float = Field(10.0, gt=0, description="a-denorm: Gaussian smoothing of the update (cells)")
    pretrain_steps: int = Field(5000, ge=0, description="pretrain: at most this many L1 steps in stage 1")
    pretrain_lr: float = Field(1e-4, gt=0)
    pretrain_tol: float = Field(0.005, gt=0, description="pretrain: stop at this mean relative error")
    loss_scale: float = Field(1.0, gt=0, description="J = loss_scale * 1/2 sum(residual^2)")
    clip_quantile: float | None = Field(
        0.98, gt=0, le=1, description="grid with Adam: clip |gradient| at this quantile (not L-BFGS: line search)"
    )
    warmup_iterations: int = Field(
        10,
        ge=0,
        description="network modes: Adam's lr ramped linearly over this many first iterations, at most a tenth "
        "of the run (0 = off)",
    )
    storage: Literal["device", "cpu", "disk", "none"] = "device"
    storage_compression: bool = False
    checkpoint_segments: int | None = Field(None, ge=1)
    gradient_sampling_interval: int = Field(
        1, ge=1, description="model gradient integrated every N samples (1 = exact adjoint; ~3x faster at 5)"
    )
    checkpoint_every: int = Field(50, ge=1, description="iterations between checkpoints")
    metrics_every: int = Field(10, ge=1, description="iterations between SSIM evaluations (MSE every iteration)")
    plasticity_window: int = Field(100, ge=1, description="last K iterations of the plasticity measure")
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "cpu"
    threads: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> InversionConfig:
        if self.optimizer == "lbfgs" and self.mode != "grid":
            raise ValueError(f"optimizer lbfgs is only for mode grid (mode {self.mode!r} uses adam)")
        lo, hi = self.bounds
        if not 0 < lo < hi:
            raise ValueError(f"bounds must satisfy 0 < vmin < vmax, got {self.bounds}")
        if isinstance(self.scale, float) and self.scale <= 0:
            raise ValueError(f"scale S must be positive, got {self.scale}")
        if not self.frequencies:
            raise ValueError("frequencies needs at least one stage (None = full band)")
        if any(f is not None and f <= 0 for f in self.frequencies):
            raise ValueError(f"frequencies must be positive cut-offs or None, got {self.frequencies}")
        if len(self.frequencies) > self.iterations:
            raise ValueError(f"{len(self.frequencies)} frequency stages need at least as many iterations")
        return self

    @property
    def is_network(self) -> bool:
        """True for the four modes whose model comes from a SIREN."""
        return self.mode != "grid"

    @property
    def learning_rate(self) -> float:
        """``lr``, or the mode's default."""
        if self.lr is not None:
            return self.lr
        return GRID_LR if self.mode == "grid" else NETWORK_LR

    def stages(self) -> list[tuple[int, int, float | None]]:
        """``(first iteration, end iteration, cut-off)`` of each multiscale stage (iterations split evenly)."""
        n = len(self.frequencies)
        edges = [round(i * self.iterations / n) for i in range(n + 1)]
        return [(edges[i], edges[i + 1], self.frequencies[i]) for i in range(n)]
