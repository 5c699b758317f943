"""Settings of the QC metrics and report."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from seiscore.metrics.leakage import DEFAULT_NITER, DEFAULT_RADIUS


class QCConfig(BaseModel):
    """How much of a survey the QC reads and how the measures are computed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(
        16, ge=1, description="slices loaded at once (memory: batch_size x one slice x 8 bytes x arrays)"
    )
    leakage_radius: int = Field(DEFAULT_RADIUS, ge=1, description="box half-length of the leakage smoothing (samples)")
    leakage_niter: int = Field(DEFAULT_NITER, ge=1, description="conjugate-gradient iterations of the smooth division")
    max_lines: int = Field(16, ge=1, description="lines along the first trace dim read for spectra")
    max_traces_per_line: int = Field(256, ge=1, description="traces per line read for spectra")
    n_bands: int = Field(4, ge=1, description="equal-width frequency bands for the removed-noise energy")
    clip_percentile: float = Field(
        99.0, gt=0, le=100, description="symmetric clip of the section images (percentile of |original|)"
    )
