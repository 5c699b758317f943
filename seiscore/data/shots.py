"""Pre-stack shot gathers (data kind ``shotgather``): acquisition geometry on a regular 2-D grid.

:class:`Geometry` is the one description of a 2-D acquisition the FWI engine
(:mod:`seiscore.methods.drfwi.engine`), the shot-gather store and the SEG-Y shot-record reader share:
square cells of ``dx`` metres over an ``nz x nx`` model, source and receiver positions as grid cells
``(z, x)`` (every shot records on the same receivers), the time sampling, and a Ricker source.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class GeometryError(ValueError):
    """An acquisition geometry that does not fit its grid or data; the message names the problem."""


class Geometry(BaseModel):
    """2-D acquisition on a regular grid (positions in cells, ``(z, x)``; metres = cell * ``dx``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nz: int = Field(ge=2, description="model cells in depth")
    nx: int = Field(ge=2, description="model cells laterally")
    dx: float = Field(gt=0, description="cell size (m), the same in z and x")
    sources: tuple[tuple[int, int], ...] = Field(description="source cells (z, x), one per shot")
    receivers: tuple[tuple[int, int], ...] = Field(description="receiver cells (z, x), the same for every shot")
    dt: float = Field(gt=0, description="recording sample interval (s)")
    nt: int = Field(ge=2, description="samples per trace")
    peak_frequency: float = Field(gt=0, description="Ricker wavelet peak frequency (Hz)")

    @model_validator(mode="after")
    def _inside(self) -> Geometry:
        for what, cells in (("source", self.sources), ("receiver", self.receivers)):
            if not cells:
                raise GeometryError(f"geometry has no {what}s")
            arr = np.asarray(cells)
            bad = np.flatnonzero((arr[:, 0] < 0) | (arr[:, 0] >= self.nz) | (arr[:, 1] < 0) | (arr[:, 1] >= self.nx))
            if bad.size:
                z, x = cells[int(bad[0])]
                raise GeometryError(
                    f"{what} {int(bad[0])} at cell (z={z}, x={x}) is outside the {self.nz} x {self.nx} grid"
                    + (f" ({bad.size} {what}s outside)" if bad.size > 1 else "")
                )
        return self

    @property
    def n_shots(self) -> int:
        """Number of shots."""
        return len(self.sources)

    @property
    def n_receivers(self) -> int:
        """Number of receivers per shot."""
        return len(self.receivers)

    @property
    def record_shape(self) -> tuple[int, int, int]:
        """``(shot, receiver, time)`` shape of the recorded data."""
        return self.n_shots, self.n_receivers, self.nt

    def check_data(self, data: np.ndarray, what: str = "shot gathers") -> None:
        """One-line :class:`GeometryError` unless ``data`` has :attr:`record_shape`."""
        if tuple(np.shape(data)) != self.record_shape:
            raise GeometryError(
                f"{what} have shape {tuple(np.shape(data))} but the geometry records {self.record_shape} "
                f"(shots, receivers, samples at dt={self.dt:g} s)"
            )

    @classmethod
    def surface(
        cls,
        nz: int,
        nx: int,
        dx: float,
        *,
        n_shots: int,
        dt: float,
        nt: int,
        peak_frequency: float,
        depth_cells: int = 1,
        receiver_step: int = 1,
    ) -> Geometry:
        """Sources evenly spread along the top (``n_shots``, first and last one cell in from the edges) and a
        receiver every ``receiver_step`` cells, all ``depth_cells`` below the top."""
        xs = np.linspace(1, nx - 2, n_shots).round().astype(int) if n_shots > 1 else np.array([nx // 2])
        rx = np.arange(0, nx, receiver_step)
        return cls(
            nz=nz,
            nx=nx,
            dx=dx,
            sources=tuple((depth_cells, int(x)) for x in xs),
            receivers=tuple((depth_cells, int(x)) for x in rx),
            dt=dt,
            nt=nt,
            peak_frequency=peak_frequency,
        )
