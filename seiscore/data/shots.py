"""Pre-stack shot gathers (data kind ``shotgather``): acquisition geometry on a regular 2-D grid.

:class:`Geometry` is the one description of a 2-D acquisition the FWI engine
(:mod:`seiscore.methods.drfwi.engine`), the shot-gather store and the SEG-Y shot-record reader share:
square cells of ``dx`` metres over an ``nz x nx`` model, source and receiver positions as grid cells
``(z, x)`` (every shot records on the same receivers), the time sampling, and a Ricker source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seiscore.data.kinds import SHOTGATHER


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


# -- the shot-gather store ----------------------------------------------------------------------------------
KIND = SHOTGATHER
COMPLETE_ATTR = "seiscore_complete"
GEOMETRY_ATTR = "geometry"


class ShotDataError(ValueError):
    """Shot gathers that cannot be used (NaN, wrong type, inconsistent SEG-Y headers); the message names them."""


def _as_records(data: np.ndarray, geometry: Geometry, what: str) -> np.ndarray:
    """``data`` as C-contiguous float32 (a copy when converted), after checking its type, shape and values."""
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ShotDataError(f"{what} must be real numbers, got dtype {arr.dtype}")
    geometry.check_data(arr, what)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        s, r, t = (int(i) for i in np.argwhere(bad)[0])
        raise ShotDataError(
            f"{what} hold {int(bad.sum())} NaN or infinite samples (first: shot {s}, receiver {r}, sample {t})"
        )
    return arr


def write_shot_store(
    store: str | os.PathLike,
    data: np.ndarray,
    geometry: Geometry,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
    roots: Iterable[str | os.PathLike] | None = None,
) -> Path:
    """Write shot gathers ``data`` (shot, receiver, time) recorded with ``geometry`` as a complete shot store.

    Layout (a Zarr v3 group that plain ``xarray.open_zarr`` reads): ``amplitude`` float32 (shot, receiver, time),
    one shot per chunk; coordinates ``shot``, ``receiver`` (indices), ``time`` (s), ``source_x``/``source_z``
    (shot) and ``receiver_x``/``receiver_z`` (receiver) in metres (cell * dx); group attributes ``kind``
    (``shotgather``), ``geometry`` (the :class:`Geometry` as JSON), ``dt``, ``dx``, ``nz``, ``nx``,
    ``peak_frequency``, ``value_min``/``value_max``, ``attrs`` and ``seiscore_complete``.

    The data are checked first (shape against the geometry, finite values: one-line errors); the store is
    written under a temporary sibling, removed on failure, and renamed into place when whole. An existing
    store is replaced only with ``overwrite`` and only when the product wrote it; ``roots`` (data roots) as in
    :func:`seiscore.core.safety.check_write_target`. ``data`` is never modified. Returns the resolved path."""
    import xarray as xr

    from seiscore.core.safety import STORE_MARK_ATTR
    from seiscore.io.os_errors import removed_on_failure
    from seiscore.io.store import consolidate, prepare_target, publish

    if not isinstance(geometry, Geometry):
        raise GeometryError(f"geometry must be a seiscore.data.shots.Geometry, got {type(geometry).__name__}")
    if roots is not None:
        from seiscore.core.safety import check_write_target

        check_write_target(store, what="shot store", roots=roots, replace=True)
    arr = _as_records(data, geometry, "shot gathers")
    src = np.asarray(geometry.sources, dtype=np.float64) * geometry.dx
    rec = np.asarray(geometry.receivers, dtype=np.float64) * geometry.dx
    final, tmp = prepare_target(store, overwrite, what="shot store")
    coords = {
        "shot": np.arange(geometry.n_shots, dtype=np.int64),
        "receiver": np.arange(geometry.n_receivers, dtype=np.int64),
        "time": geometry.dt * np.arange(geometry.nt, dtype=np.float64),
        "source_z": ("shot", src[:, 0]),
        "source_x": ("shot", src[:, 1]),
        "receiver_z": ("receiver", rec[:, 0]),
        "receiver_x": ("receiver", rec[:, 1]),
    }
    ds = xr.Dataset({KIND.variable: (KIND.dims, arr)}, coords=coords)
    for name in ("source_z", "source_x", "receiver_z", "receiver_x"):
        ds[name].attrs["units"] = "m"
    ds["time"].attrs["units"] = "s"
    ds.attrs = {
        **(attrs or {}),
        "kind": KIND.name,
        GEOMETRY_ATTR: geometry.model_dump_json(),
        "dt": geometry.dt,
        "dx": geometry.dx,
        "nz": geometry.nz,
        "nx": geometry.nx,
        "peak_frequency": geometry.peak_frequency,
        "value_min": float(arr.min()),
        "value_max": float(arr.max()),
        STORE_MARK_ATTR: 1,
        COMPLETE_ATTR: False,
    }
    encoding = {KIND.variable: {"chunks": (1, geometry.n_receivers, geometry.nt)}}
    with removed_on_failure(tmp):
        ds.to_zarr(str(tmp), mode="w", encoding=encoding, consolidated=False, zarr_format=3)
        publish(tmp, final, attrs={COMPLETE_ATTR: True})
    consolidate(final)
    return final


def _store_attrs(path: Path) -> dict[str, Any] | None:
    from seiscore.io.store import local_root_attrs

    return local_root_attrs(path)


def is_shot_store(store: str | os.PathLike) -> bool:
    """True when ``store`` is a complete shot store."""
    a = _store_attrs(Path(store))
    return a is not None and a.get("kind") == KIND.name and bool(a.get(COMPLETE_ATTR))


def open_shot_store(store: str | os.PathLike):
    """The shot store at ``store`` as a lazy ``xarray.Dataset``; one-line errors when it is missing, incomplete or
    of another kind."""
    import xarray as xr

    path = Path(store)
    a = _store_attrs(path)
    if a is None:
        raise FileNotFoundError(f"shot store {path} does not exist")
    if a.get("kind") != KIND.name:
        raise ShotDataError(f"{path} is not a shot store (kind {a.get('kind')!r})")
    if not a.get(COMPLETE_ATTR):
        raise ShotDataError(f"shot store {path} is incomplete (an interrupted write); rebuild it")
    return xr.open_zarr(str(path), consolidated=True)


def read_shot_store(store: str | os.PathLike) -> tuple[np.ndarray, Geometry, dict[str, Any]]:
    """``(data (shot, receiver, time) float32, geometry, attrs)`` of a shot store (the geometry from its JSON
    attribute, checked against the data's shape)."""
    ds = open_shot_store(store)
    attrs = dict(ds.attrs)
    try:
        geometry = Geometry.model_validate_json(attrs[GEOMETRY_ATTR])
    except (KeyError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise ShotDataError(f"shot store {store} has no valid geometry attribute ({first})") from None
    data = np.ascontiguousarray(ds[KIND.variable].values, dtype=np.float32)
    geometry.check_data(data, f"shot store {store}")
    return data, geometry, attrs


# -- SEG-Y shot records -------------------------------------------------------------------------------------
# Our exports name what SEG-Y headers cannot hold in textual-header lines "SEISCORE <KEY> <value>".
_TEXT_KEYS = {"NZ": int, "NX": int, "DX": float, "X0": float, "PEAK_HZ": float}
_SCALARS = (1, -10, -100, -1000)


def _scale(scalar: np.ndarray) -> np.ndarray:
    """SEG-Y scalar -> multiplier: s > 0 multiplies, s < 0 divides by |s|, 0 means 1."""
    s = np.asarray(scalar, dtype=np.float64)
    return np.where(s > 0, s, np.where(s < 0, 1.0 / np.abs(np.where(s < 0, s, 1.0)), 1.0))


def _choose_scalar(values: np.ndarray) -> int:
    """The first of 1, -10, -100, -1000 that stores ``values`` (m) as exact int32, else -1000 (rounded to mm)."""
    for s in _SCALARS:
        stored = values / _scale(s)
        if np.all(np.abs(stored) < 2**31 - 1) and np.allclose(stored, np.rint(stored), rtol=0, atol=1e-6):
            return s
    if np.any(np.abs(values * 1000.0) >= 2**31 - 1):
        raise ShotDataError(f"positions up to {np.abs(values).max():g} m do not fit SEG-Y's 32-bit coordinates")
    return -1000


def _text_values(text: bytes | bytearray | str) -> dict[str, float | int]:
    import re

    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("ascii", errors="replace")
    out: dict[str, float | int] = {}
    for key, value in re.findall(r"SEISCORE ([A-Z_0-9]+) (\S+)", text):
        if key in _TEXT_KEYS:
            try:
                out[key] = _TEXT_KEYS[key](value)
            except ValueError:
                pass
    return out


def _dominant_frequency(data: np.ndarray, dt: float) -> float:
    """Peak (Hz) of the traces' mean amplitude spectrum, DC excluded (a Ricker wavelet's peak frequency)."""
    spectrum = np.abs(np.fft.rfft(data.reshape(-1, data.shape[-1]), axis=-1)).mean(axis=0)
    freqs = np.fft.rfftfreq(data.shape[-1], dt)
    if spectrum.size < 2 or not np.any(spectrum[1:] > 0):
        raise ShotDataError("cannot estimate the peak frequency of all-zero shot gathers; pass peak_frequency")
    return float(freqs[1 + int(np.argmax(spectrum[1:]))])


def shots_from_segy(
    path: str | os.PathLike,
    dx: float | None = None,
    *,
    expect: Geometry | None = None,
    nz: int | None = None,
    nx: int | None = None,
    peak_frequency: float | None = None,
    x0: float | None = None,
    endian: str = "big",
) -> tuple[np.ndarray, Geometry]:
    """Pre-stack SEG-Y shot records -> ``(data (shot, receiver, time) float32, Geometry)``.

    Traces (read with segyio, ``ignore_geometry=True``) are grouped into shots by source position, shots in the
    order they first appear. Positions: ``x = SourceX / GroupX`` scaled by ``SourceGroupScalar`` (byte 71);
    depths (positive down) from elevations scaled by ``ElevationScalar`` (byte 69) below the highest elevation
    ``E`` in the file: source ``z = SourceDepth + E - SourceSurfaceElevation``, receiver
    ``z = E - ReceiverGroupElevation``. Cells are ``round((x - x0) / dx)`` and ``round(z / dx)``.

    Every shot must record the same receivers (in any trace order; the first shot's order is kept), each once;
    the sample interval is the binary header's (every trace header that sets one must agree); every trace must
    hold the binary header's sample count and start at the shot (no delay recording time). The grid spacing
    ``dx``, the grid ``nz x nx`` and the Ricker ``peak_frequency`` come from the arguments, else from ``expect``,
    else from the ``SEISCORE`` lines of a file :func:`export_shot_segy` wrote, else: ``dx`` the smallest receiver
    spacing, the grid just holding every position, the peak of the mean amplitude spectrum; the origin ``x0``
    from the argument, the ``SEISCORE`` lines, else the smallest position. With ``expect`` the file's sample
    count, sample interval and positions must equal the expected geometry's.
    Every problem is a one-line :class:`ShotDataError` or :class:`GeometryError`."""
    import segyio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SEG-Y file {path} does not exist")
    TF = segyio.TraceField
    try:
        f = segyio.open(str(path), "r", ignore_geometry=True, endian=endian)
    except Exception as exc:  # noqa: BLE001 - segyio raises several types for unreadable files
        raise ShotDataError(f"{path} is not a readable SEG-Y file ({str(exc).splitlines()[0]})") from None
    with f:
        ntr, ns = f.tracecount, len(f.samples)
        if ntr == 0:
            raise ShotDataError(f"{path} holds no traces")
        head = {k: np.asarray(f.attributes(getattr(TF, k))[:], dtype=np.int64) for k in (
            "SourceX", "GroupX", "SourceGroupScalar", "SourceDepth", "SourceSurfaceElevation",
            "ReceiverGroupElevation", "ElevationScalar", "TRACE_SAMPLE_COUNT", "TRACE_SAMPLE_INTERVAL",
            "DelayRecordingTime",
        )}  # fmt: skip
        bin_interval = int(f.bin[segyio.BinField.Interval])
        bin_samples = int(f.bin[segyio.BinField.Samples])
        text = _text_values(f.text[0])
        traces = np.asarray(f.trace.raw[:], dtype=np.float32).reshape(ntr, ns)

    counts = head["TRACE_SAMPLE_COUNT"]
    expected_ns = bin_samples or ns
    bad = np.flatnonzero((counts != 0) & (counts != expected_ns))
    if bad.size or ns != expected_ns:
        t = int(bad[0]) if bad.size else 0
        raise ShotDataError(
            f"{path}: trace {t} has {int(counts[t]) if bad.size else ns} samples but the binary header says "
            f"{expected_ns} ({max(1, bad.size)} traces disagree); every trace must hold the same sample count"
        )
    intervals = head["TRACE_SAMPLE_INTERVAL"]
    set_intervals = np.unique(intervals[intervals > 0])
    if bin_interval > 0:
        bad = np.flatnonzero((intervals > 0) & (intervals != bin_interval))
        if bad.size:
            t = int(bad[0])
            raise ShotDataError(
                f"{path}: trace {t} has sample interval {int(intervals[t])} us but the binary header says "
                f"{bin_interval} us ({bad.size} traces disagree)"
            )
        interval = bin_interval
    elif set_intervals.size == 1:
        interval = int(set_intervals[0])
    else:
        raise ShotDataError(
            f"{path}: no single sample interval (binary header 0, trace headers {set_intervals.tolist()[:4]} us)"
        )
    dt = interval / 1e6
    delayed = np.flatnonzero(head["DelayRecordingTime"] != 0)
    if delayed.size:
        t = int(delayed[0])
        raise ShotDataError(
            f"{path}: trace {t} starts {int(head['DelayRecordingTime'][t])} ms after the shot (delay recording "
            f"time, {delayed.size} traces); shot records must start at the shot time"
        )
    finite = np.isfinite(traces)
    if not finite.all():
        t, k = (int(i) for i in np.argwhere(~finite)[0])
        raise ShotDataError(
            f"{path} holds {int((~finite).sum())} NaN or infinite samples (first: trace {t}, sample {k})"
        )

    xy = _scale(head["SourceGroupScalar"])
    ez = _scale(head["ElevationScalar"])
    sx, gx = head["SourceX"] * xy, head["GroupX"] * xy
    s_elev, g_elev = head["SourceSurfaceElevation"] * ez, head["ReceiverGroupElevation"] * ez
    top = max(float(s_elev.max()), float(g_elev.max()))
    sz = head["SourceDepth"] * ez + (top - s_elev)
    gz = top - g_elev

    def pick(given, key, from_expect):
        if given is not None:
            return given
        if expect is not None:
            return from_expect
        return text.get(key)

    dx = pick(dx, "DX", expect.dx if expect else None)
    if dx is None:
        ux = np.unique(gx)
        steps = np.diff(ux)
        if steps.size == 0:
            raise ShotDataError(f"{path}: all receivers share x = {ux[0]:g} m; cannot infer the spacing, pass dx")
        dx = float(steps.min())
    dx = float(dx)
    if not (np.isfinite(dx) and dx > 0):
        raise ShotDataError(f"grid spacing dx must be positive (m), got {dx}")
    x0 = text.get("X0") if x0 is None else x0
    x0 = float(min(sx.min(), gx.min())) if x0 is None else float(x0)

    # shots by source position, in order of first appearance
    src_key = np.stack([sx, sz], axis=1)
    _, first, shot_of = np.unique(src_key, axis=0, return_index=True, return_inverse=True)
    shot_of = shot_of.reshape(-1)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    shot_of = rank[shot_of]
    n_shots = first.size
    src_trace = np.sort(first)  # one trace per shot, in shot order

    cell_x = np.rint((gx - x0) / dx).astype(np.int64)
    cell_z = np.rint(gz / dx).astype(np.int64)
    rx_cells, rx_of = np.unique(np.stack([cell_z, cell_x], axis=1), axis=0, return_inverse=True)
    rx_of = rx_of.reshape(-1)
    table = np.zeros((n_shots, rx_cells.shape[0]), dtype=np.int64)
    np.add.at(table, (shot_of, rx_of), 1)
    if (table > 1).any():
        s, r = (int(i) for i in np.argwhere(table > 1)[0])
        raise ShotDataError(
            f"{path}: shot {s} (source x={sx[src_trace[s]]:g} m) records receiver cell (z={rx_cells[r, 0]}, "
            f"x={rx_cells[r, 1]}) {int(table[s, r])} times at dx={dx:g} m; each receiver once per shot"
        )
    if (table == 0).any():
        s, r = (int(i) for i in np.argwhere(table == 0)[0])
        per_shot = table.sum(axis=1)
        raise ShotDataError(
            f"{path}: shot {s} (source x={sx[src_trace[s]]:g} m, {int(per_shot[s])} receivers) lacks the receiver "
            f"at x={x0 + rx_cells[r, 1] * dx:g} m that other shots record; every shot must use the same receivers"
        )
    first_shot = np.flatnonzero(shot_of == 0)
    position = np.empty(rx_cells.shape[0], dtype=np.int64)
    position[rx_of[first_shot]] = np.arange(first_shot.size)
    data = np.empty((n_shots, rx_cells.shape[0], ns), dtype=np.float32)
    data[shot_of, position[rx_of]] = traces
    receivers = rx_cells[rx_of[first_shot]]
    sources = np.stack([np.rint(sz[src_trace] / dx), np.rint((sx[src_trace] - x0) / dx)], axis=1).astype(np.int64)

    all_cells = np.concatenate([sources, receivers])
    nz = pick(nz, "NZ", expect.nz if expect else None)
    nx = pick(nx, "NX", expect.nx if expect else None)
    nz = int(max(2, all_cells[:, 0].max() + 1)) if nz is None else int(nz)
    nx = int(max(2, all_cells[:, 1].max() + 1)) if nx is None else int(nx)
    peak = pick(peak_frequency, "PEAK_HZ", expect.peak_frequency if expect else None)
    peak = _dominant_frequency(data, dt) if peak is None else float(peak)
    if expect is not None:
        _check_sampling(path, ns, dt, expect)
    try:
        geometry = Geometry(
            nz=nz,
            nx=nx,
            dx=dx,
            sources=tuple((int(z), int(x)) for z, x in sources),
            receivers=tuple((int(z), int(x)) for z, x in receivers),
            dt=dt,
            nt=ns,
            peak_frequency=peak,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise GeometryError(f"{path}: {problem} (dx={dx:g} m, x0={x0:g} m)") from None
    if expect is not None:
        _check_expected(path, geometry, expect)
    return data, geometry


def _check_sampling(path: Path, nt: int, dt: float, expect: Geometry) -> None:
    """One-line :class:`GeometryError` when the file's sample count or interval differs from ``expect``'s."""
    if nt != expect.nt:
        raise GeometryError(f"{path} holds {nt} samples per trace but the geometry records {expect.nt}")
    if not np.isclose(dt, expect.dt, rtol=1e-9, atol=0):
        raise GeometryError(f"{path} is sampled every {dt:g} s but the geometry records dt={expect.dt:g} s")


def _check_expected(path: Path, got: Geometry, expect: Geometry) -> None:
    """One-line :class:`GeometryError` naming the first way ``got`` (read from ``path``) differs from ``expect``."""
    _check_sampling(path, got.nt, got.dt, expect)
    for what, a, b in (("shots", got.sources, expect.sources), ("receivers", got.receivers, expect.receivers)):
        if len(a) != len(b):
            raise GeometryError(f"{path} holds {len(a)} {what} but the geometry has {len(b)}")
        diff = [i for i, (p, q) in enumerate(zip(a, b)) if p != q]
        if diff:
            i = diff[0]
            raise GeometryError(
                f"{path}: {what[:-1]} {i} is at cell {a[i]} but the geometry puts it at {b[i]} ({len(diff)} differ)"
            )


def export_shot_segy(store: str | os.PathLike, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the shot store ``store`` as a pre-stack SEG-Y file ``path`` (IEEE floats, big-endian): one trace per
    shot x receiver, shot-major, with FieldRecord (shot + 1), TraceNumber (receiver + 1), the sequence numbers,
    SourceX / GroupX and the coordinate scalar, SourceDepth and ReceiverGroupElevation (``-z``) with the elevation
    scalar, offset (m, rounded), the sample count and interval; textual-header lines ``SEISCORE NZ / NX / DX /
    X0 / PEAK_HZ`` carry what the trace headers cannot, so :func:`shots_from_segy` reads the file back to the
    same data and geometry. The file is written under a temporary sibling and renamed when whole (marked as the
    product's: an existing file is replaced only with ``overwrite`` and only when the product wrote it)."""
    import segyio

    from seiscore.core.safety import check_replaceable, check_write_target, replace_file
    from seiscore.io.headers import TRACE_HEADER_SIZE, trace_header_dtype
    from seiscore.io.os_errors import removed_on_failure, writing

    data, geom, _ = read_shot_store(store)
    dest = check_write_target(path, what="SEG-Y file", roots=None, protected=[("shot store being exported", store)])
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists; pass overwrite=True (--overwrite) to replace it")
    interval = geom.dt * 1e6
    if abs(interval - round(interval)) > 1e-6 * max(1.0, interval) or not 0 < round(interval) < 2**15:
        raise ShotDataError(f"dt={geom.dt:g} s is not a whole number of microseconds below 32.768 ms (SEG-Y)")
    if geom.nt >= 2**15:
        raise ShotDataError(f"{geom.nt} samples per trace exceed SEG-Y's 32767")
    n_s, n_r, nt = data.shape
    src = np.asarray(geom.sources, dtype=np.float64) * geom.dx
    rec = np.asarray(geom.receivers, dtype=np.float64) * geom.dx
    s_idx, r_idx = np.repeat(np.arange(n_s), n_r), np.tile(np.arange(n_r), n_s)
    sx, sz, gx, gz = src[s_idx, 1], src[s_idx, 0], rec[r_idx, 1], rec[r_idx, 0]
    coord_scalar = _choose_scalar(np.concatenate([src[:, 1], rec[:, 1]]))
    elev_scalar = _choose_scalar(np.concatenate([src[:, 0], rec[:, 0]]))
    ntr = n_s * n_r
    h = np.zeros(ntr, dtype=trace_header_dtype("big"))
    seq = np.arange(1, ntr + 1)
    h["header_trace_sequence_line"] = seq
    h["header_trace_sequence_file"] = seq
    h["header_field_record"] = s_idx + 1
    h["header_trace_number"] = r_idx + 1
    h["header_trace_identification_code"] = 1
    h["header_offset"] = np.rint(gx - sx)
    h["header_source_x"] = np.rint(sx / _scale(coord_scalar))
    h["header_group_x"] = np.rint(gx / _scale(coord_scalar))
    h["header_source_group_scalar"] = coord_scalar
    h["header_source_depth"] = np.rint(sz / _scale(elev_scalar))
    h["header_receiver_group_elevation"] = np.rint(-gz / _scale(elev_scalar))
    h["header_elevation_scalar"] = elev_scalar
    h["header_trace_sample_count"] = nt
    h["header_trace_sample_interval"] = round(interval)
    block = np.empty((ntr, TRACE_HEADER_SIZE + 4 * nt), dtype=np.uint8)
    block[:, :TRACE_HEADER_SIZE] = h.view(np.uint8).reshape(ntr, TRACE_HEADER_SIZE)
    block[:, TRACE_HEADER_SIZE:] = data.reshape(ntr, nt).astype(">f4").view(np.uint8).reshape(ntr, 4 * nt)

    lines = {
        1: "SEISCORE PRE-STACK SHOT GATHERS (KIND SHOTGATHER)",
        2: f"SHOTS {n_s} RECEIVERS {n_r} SAMPLES {nt} INTERVAL {round(interval)} US IEEE FLOAT",
        3: "TRACES SHOT-MAJOR: FIELD RECORD = SHOT + 1, TRACE NUMBER = RECEIVER + 1",
        4: f"X: SOURCEX, GROUPX (SCALAR {coord_scalar}); Z: SOURCEDEPTH, -GROUPELEV (SCALAR {elev_scalar})",
        5: f"SEISCORE NZ {geom.nz}",
        6: f"SEISCORE NX {geom.nx}",
        7: f"SEISCORE DX {geom.dx!r}",
        8: "SEISCORE X0 0.0",
        9: f"SEISCORE PEAK_HZ {geom.peak_frequency!r}",
    }
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount, spec.endian = 5, list(range(nt)), ntr, "big"
    tmp = check_replaceable(dest.with_name(f".{dest.name}.seiscore-tmp"), "temporary SEG-Y file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with removed_on_failure(tmp), writing(tmp):
        tmp.unlink(missing_ok=True)
        with segyio.create(str(tmp), spec) as f:  # textual + binary headers
            f.text[0] = segyio.tools.create_text_header(lines)
            f.bin.update(
                {
                    segyio.BinField.Interval: round(interval),
                    segyio.BinField.Samples: nt,
                    segyio.BinField.Format: 5,
                    segyio.BinField.SortingCode: 1,
                }
            )
        with open(tmp, "ab") as fh:  # the traces in one vectorised block
            fh.write(block.data)
            fh.flush()
            os.fsync(fh.fileno())
    return replace_file(tmp, dest)
