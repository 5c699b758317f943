"""TLSM parameters and the paper's presets (docs/TLSM.md, "Parameters")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TLSMParams(BaseModel):
    """ADMM weights of TLSM, named as in the authors' demo.

    - ``tau``: weight of the LSM low-rank (t-SVD) term; the Z-step uses rho = tau / alpha.
    - ``alpha``, ``beta``, ``gamma``: balancing factors for Z, D1 and D2.
    - ``lambda1``: weight of the footprint-smoothness term ||grad_1 (X - Y)||_LSM (D1 uses lambda1 / beta).
    - ``lambda2``: weight of the signal-smoothness term ||grad_2 X||_LSM (D2 uses lambda2 / gamma).
    - ``iterations``: ADMM iterations (20 in the paper).
    - ``boundary``: ``"demo"`` reproduces the demo's mixed conventions (periodic differences in
      the X-step, replicated / zero last differences in the D-steps); ``"periodic"`` uses periodic
      differences everywhere (the consistent alternative).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tau: float = Field(0.5, gt=0)
    alpha: float = Field(4.0, gt=0)
    beta: float = Field(1.0, gt=0)
    gamma: float = Field(0.2, gt=0)
    lambda1: float = Field(0.05, gt=0)
    lambda2: float = Field(1.0, gt=0)
    iterations: int = Field(20, ge=1, le=10_000)
    boundary: Literal["demo", "periodic"] = "demo"


PRESETS: dict[str, TLSMParams] = {
    "synthetic": TLSMParams(tau=0.5, alpha=4, beta=1, gamma=0.2, lambda1=0.05, lambda2=1),
    "penobscot": TLSMParams(tau=0.1, alpha=1, beta=1, gamma=0.05, lambda1=10, lambda2=1),
    "kerry": TLSMParams(tau=0.1, alpha=0.1, beta=1, gamma=10, lambda1=10, lambda2=1),
}


def resolve_params(params: TLSMParams | dict | None = None, preset: str | None = None) -> TLSMParams:
    """Combine a preset (default ``synthetic``) with explicit parameters or overrides.

    ``params`` may be a full :class:`TLSMParams` (used as is) or a dict of overrides applied on
    top of the preset. Raises ``ValueError`` for an unknown preset or invalid values.
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown TLSM preset {preset!r}; choose one of {', '.join(PRESETS)}")
    base = PRESETS[preset or "synthetic"]
    if params is None:
        return base
    if isinstance(params, TLSMParams):
        if preset is not None:
            raise ValueError(
                "give either params=TLSMParams(...) or preset=..., not both (pass a dict to override a preset)"
            )
        return params
    if isinstance(params, dict):
        try:
            return TLSMParams.model_validate({**base.model_dump(), **params})
        except Exception as exc:  # pydantic.ValidationError -> ValueError with the field named
            raise ValueError(f"invalid TLSM parameters: {exc}") from None
    raise ValueError(f"params must be TLSMParams, a dict of overrides or None, got {type(params).__name__}")
