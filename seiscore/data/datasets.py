"""Demo surveys as SEG-Y files: the synthetic cube (with its clean reference) and Penobscot.

Penobscot assumptions (the shared ``.npy`` subset carries amplitudes only): inline numbers
1000..1249 and crossline numbers 1000..1149 (increment 1), a 25 m x 25 m bin grid with
inlines running north (inline step (0, 25) m) and crosslines east (crossline step
(25, 0) m) from an arbitrary origin (734000 m E, 4890000 m N, UTM-like), CDP X/Y stored
in centimetres (coordinate scalar -100), 4 ms sampling starting at 0 ms, IEEE float
samples (format 5), big-endian, inline-sorted. The synthetic survey uses inlines and
crosslines from 1, the same bin grid from origin (0, 0) and 2 ms sampling.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seiscore.core.safety import mark_owned
from seiscore.data.synth import SynthConfig, make_survey
from seiscore.io.segy_write import SegyWriteSpec, write_cube

# The shared data folder sits beside the repository (../shared/data/penobscot); SEIS_PENOBSCOT overrides it.
# The shared material lies beside the repository (REPO/../shared); this module is REPO/seiscore/data/datasets.py.
PENOBSCOT_DIR = Path(
    os.environ.get("SEIS_PENOBSCOT", Path(__file__).resolve().parents[2].parent / "shared" / "data" / "penobscot")
)
PENOBSCOT_NPY = PENOBSCOT_DIR / "penobscot_250x150x40.npy"
PENOBSCOT_SPEC = SegyWriteSpec(
    first_inline=1000,
    first_crossline=1000,
    sample_interval_us=4000,
    origin_x=734000.0,
    origin_y=4890000.0,
    inline_step=(0.0, 25.0),
    crossline_step=(25.0, 0.0),
    coord_scalar=-100,
    text="PENOBSCOT 3D SUBSET 250 IL X 150 XL X 40 SAMPLES (TLSM PAPER), 4 MS",
)
DATASETS = ("synthetic", "penobscot")


def _refuse_existing(*paths: Path, overwrite: bool) -> None:
    """Refuse existing files unless ``overwrite``, and always those this product did not write
    (:mod:`seiscore.core.safety`)."""
    from seiscore.core.safety import check_replaceable

    for p in paths:
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} already exists; pass overwrite=True (--overwrite) to replace it")
        check_replaceable(p, "demo SEG-Y file")


def write_synthetic(
    dest: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    cfg: SynthConfig | None = None,
    *,
    overwrite: bool = False,
) -> tuple[Path, Path | None]:
    """Write the noisy synthetic survey to ``dest`` and its clean cube to ``reference`` (both SEG-Y)."""
    cfg = cfg or SynthConfig()
    dest = Path(dest)
    ref = Path(reference) if reference is not None else None
    _refuse_existing(dest, *([ref] if ref else []), overwrite=overwrite)
    noisy, clean = make_survey(cfg)
    spec = SegyWriteSpec(
        sample_interval_us=int(round(cfg.dt * 1e6)),
        text=f"SEISCORE SYNTHETIC SURVEY {cfg.n_inline}X{cfg.n_crossline}X{cfg.n_time} "
        f"F={cfg.footprint_peak} SIGMA={cfg.sigma} SEED={cfg.seed}",
    )
    mark_owned(write_cube(dest, noisy, spec))
    if ref is not None:
        mark_owned(
            write_cube(ref, clean, spec.model_copy(update={"text": spec.text.replace("SURVEY", "CLEAN REFERENCE")}))
        )
    return dest, ref


def write_penobscot(
    dest: str | os.PathLike, npy: str | os.PathLike = PENOBSCOT_NPY, *, overwrite: bool = False
) -> Path:
    """Write the Penobscot subset (inline, crossline, time) as SEG-Y (assumptions in the module docstring)."""
    npy, dest = Path(npy), Path(dest)
    if not npy.is_file():
        raise FileNotFoundError(f"Penobscot cube not found: {npy} (set SEIS_PENOBSCOT to the folder holding it)")
    _refuse_existing(dest, overwrite=overwrite)
    cube = np.load(npy, mmap_mode="r")
    if cube.ndim != 3:
        raise ValueError(f"{npy}: expected a 3-D (inline, crossline, time) array, got shape {cube.shape}")
    return mark_owned(write_cube(dest, np.asarray(cube, dtype=np.float32), PENOBSCOT_SPEC))


def load_reference(path: str | os.PathLike) -> np.ndarray:
    """The clean reference cube (inline, crossline, sample) from a survey store or a small SEG-Y file."""
    from seiscore.io import open_survey, probe, scan
    from seiscore.io.segy_read import TraceReader

    path = Path(path)
    if path.is_dir():
        return open_survey(path)["amplitude"].values
    layout = probe(path)
    geom = scan(layout)
    out = np.zeros(geom.shape + (layout.n_samples,), dtype=np.float32)
    live = np.flatnonzero(geom.trace_index.reshape(-1) >= 0)
    traces = geom.trace_index.reshape(-1)[live]
    order = np.argsort(traces)
    with TraceReader(layout) as reader:
        raw = reader.read_raw(traces[order])
        reader.decode_into(raw, slice(None), out.reshape(-1, layout.n_samples), live[order])
    return out
