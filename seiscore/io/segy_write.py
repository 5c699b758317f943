"""Write a post-stack cube as a SEG-Y file with segyio (demo data, tests and benchmarks).

Traces get inline/crossline numbers at the chosen byte positions, CDP X/Y from a
regular grid (``origin + i * inline_step + j * crossline_step``, stored with the
coordinate scalar ``coord_scalar``), the sample count and interval, and sequence numbers.
Bins listed in ``missing`` get no trace (an irregular geometry).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import segyio
from pydantic import BaseModel, ConfigDict, Field

from .headers import field_at


class SegyWriteSpec(BaseModel):
    """How to lay out a cube (inline, crossline, sample) as SEG-Y."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_inline: int = 1
    first_crossline: int = 1
    inline_increment: int = Field(1, ge=1)
    crossline_increment: int = Field(1, ge=1)
    il_byte: int = 189
    xl_byte: int = 193
    sample_interval_us: int = Field(4000, gt=0)
    delay_ms: int = 0
    format: int = 5
    endian: str = Field("big", pattern="^(big|little)$")
    sorting: str = Field("inline", pattern="^(inline|crossline)$")
    origin_x: float = 0.0
    origin_y: float = 0.0
    inline_step: tuple[float, float] = (0.0, 25.0)  # (dx, dy) per inline
    crossline_step: tuple[float, float] = (25.0, 0.0)  # (dx, dy) per crossline
    coord_scalar: int = -100  # SEG-Y convention: negative divides
    text: str = "seiscore generated survey"


def _textual(text: str, spec: SegyWriteSpec, shape) -> dict[int, str]:
    lines = [
        text,
        f"INLINES {shape[0]} FROM {spec.first_inline} STEP {spec.inline_increment} AT BYTE {spec.il_byte}",
        f"CROSSLINES {shape[1]} FROM {spec.first_crossline} STEP {spec.crossline_increment} AT BYTE {spec.xl_byte}",
        f"SAMPLES {shape[2]} INTERVAL {spec.sample_interval_us} US FORMAT {spec.format}",
        f"CDP X/Y SCALAR {spec.coord_scalar}, SORTED BY {spec.sorting.upper()}",
    ]
    return {i + 1: line for i, line in enumerate(lines)}


def write_cube(
    path: str | os.PathLike,
    cube: np.ndarray,
    spec: SegyWriteSpec | None = None,
    *,
    missing: np.ndarray | None = None,
    progress: bool = False,
) -> Path:
    """Write ``cube`` (inline, crossline, sample) to ``path``; ``missing`` is a bool (inline, crossline) mask."""
    spec = spec or SegyWriteSpec()
    field_at(spec.il_byte, "il_byte"), field_at(spec.xl_byte, "xl_byte")
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"cube must be 3-D (inline, crossline, sample), got shape {cube.shape}")
    n_il, n_xl, ns = cube.shape
    live = np.ones((n_il, n_xl), bool) if missing is None else ~np.asarray(missing, bool)
    ii, jj = np.nonzero(live) if spec.sorting == "inline" else (lambda j, i: (i, j))(*np.nonzero(live.T))
    scale = (
        (-1.0 / spec.coord_scalar) if spec.coord_scalar < 0 else (1.0 / spec.coord_scalar if spec.coord_scalar else 1.0)
    )
    x = spec.origin_x + ii * spec.inline_step[0] + jj * spec.crossline_step[0]
    y = spec.origin_y + ii * spec.inline_step[1] + jj * spec.crossline_step[1]
    xs, ys = np.rint(x / scale).astype(np.int64), np.rint(y / scale).astype(np.int64)
    segy_spec = segyio.spec()
    segy_spec.format = spec.format
    segy_spec.samples = list(range(ns))
    segy_spec.tracecount = int(ii.size)
    segy_spec.endian = spec.endian
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    it = range(ii.size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"write {path.name}", unit="trace")
    TF = segyio.TraceField
    with segyio.create(str(path), segy_spec) as f:
        f.text[0] = segyio.tools.create_text_header(_textual(spec.text, spec, cube.shape))
        f.bin.update(
            {
                segyio.BinField.Interval: spec.sample_interval_us,
                segyio.BinField.Samples: ns,
                segyio.BinField.Format: spec.format,
                segyio.BinField.SortingCode: 4,
            }
        )
        il_num = spec.first_inline + ii * spec.inline_increment
        xl_num = spec.first_crossline + jj * spec.crossline_increment
        for t in it:
            f.header[t] = {
                TF.TRACE_SEQUENCE_LINE: t + 1,
                TF.TRACE_SEQUENCE_FILE: t + 1,
                TF.CDP_X: int(xs[t]),
                TF.CDP_Y: int(ys[t]),
                TF.SourceGroupScalar: spec.coord_scalar,
                TF.TRACE_SAMPLE_COUNT: ns,
                TF.TRACE_SAMPLE_INTERVAL: spec.sample_interval_us,
                TF.DelayRecordingTime: spec.delay_ms,
                spec.il_byte: int(il_num[t]),
                spec.xl_byte: int(xl_num[t]),
            }  # last: they win
            f.trace[t] = np.ascontiguousarray(cube[ii[t], jj[t]], dtype=f.dtype)
    return path
