"""Configuration of a CDiffSD model and of its training (spec ``docs/CDIFFSD.md`` §2.5).

Defaults are the released code's values except where the spec chose otherwise (design): the cosine learning-rate
decay (``lr_schedule="cosine"``; ``"legacy"`` is the code's StepLR(5 epochs, x0.1)), the corrected unfolded loss
(``legacy_unfold=False``), one schedule for training and inference (``legacy_test_schedule=False``) and the cold
sampler's update ``sampler="anchored"`` (Bansal et al.'s improved step with the observed ``y``:
``x_{s-1} = x_s + (a_{s-1} - a_s) x0_hat + (b_{s-1} - b_s) y``; ``"released"`` is the code's
``x_{s-1} = (b_s + a_{s-1}) x0_hat + b_{s-1} n_hat``, ``"consistent"`` ``(a_{s-1} + b_{s-1}) x0_hat + b_{s-1} n_hat``
with ``n_hat = (x_s - (a_s + b_s) x0_hat) / b_s``; see :mod:`seiscore.methods.cdiffsd.sampler`).

Options added for the small CPU configuration (issue 14; defaults unchanged, i.e. the released behaviour):
``schedule="angle"`` (``a_t = cos(pi/2 (t+1)/T)``, ``b_t = sin(...)``: ``x_{T-1} = y`` exactly and no step spent
where ``x_t ~ y``, which the clipped scaled-linear schedule does for 8 of its 20 steps at T = 20),
``sampling_steps`` (a strided chain of that many network evaluations) and ``unfold_step="previous"`` (the loss's
second pass at ``t - 1`` with the first pass's estimate: exactly one transition of the anchored sampler, the input
the chain feeds the network at inference, instead of an independent random step). With a posterior-mean network
the chain cannot beat ``direct`` (``R(y, T-1)`` is already the best estimate from ``y``); what the sampler can lose
is drift, each step's residual fed back as if it were signal; training on the sampler's own transitions is aimed
at that. The quick benchmark (``seiscore.bench.cdiffsd``) uses ``unfold_step="previous"``; see its report for
the measured effect.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

COMPONENTS = ("Z", "N", "E")


class CDiffSDError(ValueError):
    """A CDiffSD input, configuration or artifact that cannot be used; the message is one line."""


class CDiffSDConfig(BaseModel):
    """Network, cold-diffusion schedule, loss and optimiser of one CDiffSD model.

    ``channels=1`` (the published model) trains one single-channel U-Net per component (Z, N, E);
    ``channels=3`` one U-Net seeing the three components together (an ablation, not assumed equivalent).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- network (spec §2.2) --------------------------------------------------------------------------------
    length: int = Field(3000, ge=8, description="window length in samples (30 s at 100 Hz)")
    sampling_rate: float = Field(100.0, gt=0, description="sampling rate the model was trained at (Hz)")
    dim: int = Field(8, ge=1, description="channels of the first U-Net level")
    dim_mults: tuple[int, ...] = Field((1, 2, 4, 8), min_length=1, description="channel multipliers per level")
    channels: Literal[1, 3] = Field(1, description="1: one single-channel U-Net per component; 3: one 3-C U-Net")
    groups: int = Field(8, ge=1, description="GroupNorm groups of the ResNet blocks")
    attn_heads: int = Field(4, ge=1)
    attn_dim_head: int = Field(32, ge=1)
    # -- cold diffusion (spec §2.1, §2.4) -------------------------------------------------------------------
    T: int = Field(300, ge=2, description="diffusion steps")
    schedule: Literal["linear", "cosine", "angle"] = "linear"
    cosine_s: float = Field(0.008, ge=0)
    legacy_test_schedule: bool = Field(
        False, description="sample with the released code's unscaled linear schedule (train/test mismatch)"
    )
    sampler: Literal["released", "consistent", "anchored"] = Field(
        "anchored",
        description=(
            "cold-sampling update (sampler.py): 'released' x <- (b_s + a_{s-1}) x0_hat + b_{s-1} n_hat (ends at "
            "(1 + b_0) x0); 'consistent' x <- (a_{s-1} + b_{s-1}) x0_hat + b_{s-1} n_hat; 'anchored' "
            "x <- x + (a_{s-1} - a_s) x0_hat + (b_{s-1} - b_s) y with the observed y (default: measured best)"
        ),
    )
    sampling_steps: int | None = Field(
        None, ge=2, description="network evaluations of the sampling chain, evenly spaced from T-1 to 0 (None: all T)"
    )
    # -- loss (spec §2.3) -----------------------------------------------------------------------------------
    loss: Literal["l1", "l2", "huber"] = "l1"
    penalty: float = Field(3.0, ge=0, description="lambda: weight of the second (unfolded) pass")
    legacy_unfold: bool = Field(False, description="re-degrade towards y_hat + x0_hat as the released code does")
    unfold_step: Literal["random", "previous"] = Field(
        "random", description="second-pass step: independent of t (released) or t-1 (one sampler transition)"
    )
    # -- optimiser ------------------------------------------------------------------------------------------
    lr: float = Field(1e-4, gt=0)
    lr_schedule: Literal["cosine", "legacy", "constant"] = "cosine"
    batch_size: int = Field(16, ge=1)
    epochs: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _shape(self) -> CDiffSDConfig:
        down = 2 ** (len(self.dim_mults) - 1)
        if self.length % down:
            raise ValueError(
                f"CDiffSD length {self.length} is not divisible by {down} (the U-Net halves it "
                f"{len(self.dim_mults) - 1} times)"
            )
        for m in self.dim_mults:
            if (self.dim * m) % self.groups:
                raise ValueError(f"CDiffSD dim*mult {self.dim * m} is not divisible by groups={self.groups}")
        return self

    @property
    def n_nets(self) -> int:
        """Number of U-Nets: one per component for ``channels=1``, one for ``channels=3``."""
        return 3 if self.channels == 1 else 1

    @property
    def downsampling(self) -> int:
        """Factor the U-Net's resolution drops by (window lengths must be multiples of it)."""
        return 2 ** (len(self.dim_mults) - 1)
