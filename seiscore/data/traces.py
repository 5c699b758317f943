"""Three-component station records (data kind ``traces3c``): records, fixed-length windows, the trace store.

A :class:`Record` is one station's three-component recording: ``data`` float32 ``[3, L]`` in Z, N, E order,
its sampling rate, start time (ISO 8601 UTC string), the three channel codes, P/S arrival samples (NaN when
unknown) and notes (what ingest did to it: resampled, gaps filled, padded...). Models see fixed windows:
:func:`records_to_windows` cuts records into ``length``-sample windows every ``hop`` samples (a
:class:`WindowSet`), :func:`windows_to_records` puts (denoised) windows back together with a cosine
cross-fade.

Windows of a record of ``N`` samples start at ``0, hop, 2 hop, ...`` while they fit, plus one window ending
exactly at ``N`` when the regular ones miss the end (no padding for ``N >= length``). A record shorter than
``length`` but at least ``min_length`` samples (default half a window) is zero-padded at its end into one
window, the pad recorded (``RecordInfo.pad`` and a note) and cut off again on merging; a shorter one is refused
(one-line :class:`TraceDataError`).

Cross-fade: window ``k`` gets the weight ``w_k(t)``, 1 inside, rising as ``sin^2`` over its overlap with
the previous window and falling as ``cos^2`` over its overlap with the next (record edges unweighted); the
merged record is

.. math:: \\hat x(t) = \\sum_k w_k(t)\\, y_k(t - o_k) \\Big/ \\sum_k w_k(t),

a partition of unity by construction (with the regular hop the weights already sum to 1, ``sin^2 + cos^2``),
so windows that agree on their overlaps give back exactly that signal.

The trace store (a Zarr v3 group that plain ``xarray.open_zarr`` reads)::

    amplitude          float32 (trace, component, time)   chunks (256, 3, length)
    trace              int64   (trace,)                    window index
    component          str     (component,)                "Z", "N", "E"
    time               float64 (time,)                     seconds from the window start
    record_index       int64   (trace,)                    record the window belongs to
    offset             int64   (trace,)                    first sample of the window in its record
    station            str     (trace,)                    record id "NET.STA.LOC.CH?"
    start              str     (trace,)                    window start, ISO 8601 UTC
    p_sample, s_sample float64 (trace,)                    picks in window samples (NaN: unknown or outside)
    record             int64   (record,)                   record index
    record_id          str     (record,)
    record_start       str     (record,)                   ISO 8601 UTC
    record_length      int64   (record,)                   samples of the record (before padding)
    record_pad         int64   (record,)                   zero samples appended to reach one window
    record_channels    str     (record, component)         channel codes, e.g. EHZ EHN EHE
    record_p_sample    float64 (record,)                   picks in record samples (NaN: unknown)
    record_s_sample    float64 (record,)
    record_notes       str     (record,)                   JSON list of notes

Group attributes: ``kind`` (``traces3c``), ``sampling_rate`` (Hz), ``window_length``, ``hop``, ``components``
(``"ZNE"``), ``n_records``, ``value_min``/``value_max`` (also as ``amplitude_min``/``amplitude_max``, the names the
run modes read), ``attrs`` given by the caller, the product mark and
``seiscore_complete``. The store is written under a temporary sibling and renamed into place when whole
(:mod:`seiscore.core.safety`: never replacing what the product did not write);
:func:`create_trace_output` makes an empty store of the same layout for a ``per_item`` run to fill.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from seiscore.data.kinds import TRACES3C

KIND = TRACES3C
COMPLETE_ATTR = "seiscore_complete"
COMPONENTS = ("Z", "N", "E")
DEFAULT_LENGTH = 3000
DEFAULT_HOP = 1500
CHUNK_TRACES = 256
_MERGE_BATCH = 512  # windows accumulated per bincount when merging
AMPLITUDE_MIN_ATTR, AMPLITUDE_MAX_ATTR = "amplitude_min", "amplitude_max"  # as seiscore.io.store names them
_RANGE_ATTRS = ("value_min", "value_max", AMPLITUDE_MIN_ATTR, AMPLITUDE_MAX_ATTR, "seiscore_amplitude_scale")


class TraceDataError(ValueError):
    """Records, windows or a trace store that cannot be used; the message names the record and the problem."""


# ---------------------------------------------------------------------------------------------- times
def iso_time(value: Any) -> str:
    """``value`` (ISO 8601 string, ``datetime``, ``numpy.datetime64`` or anything whose ``str`` is ISO, like
    ObsPy's ``UTCDateTime``) as the canonical UTC string ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value.astype("datetime64[us]"), unit="us")) + "Z"
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise TraceDataError(f"start time {text!r} is not an ISO 8601 date and time") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _datetime64(iso: str) -> np.datetime64:
    return np.datetime64(iso.rstrip("Z"), "us")


def shifted_time(iso: str, samples: np.ndarray | float, sampling_rate: float) -> np.ndarray:
    """ISO strings of ``iso`` + ``samples / sampling_rate`` seconds (vectorised over ``samples``), to 1 us."""
    us = np.rint(np.asarray(samples, dtype=np.float64) * (1e6 / sampling_rate)).astype("timedelta64[us]")
    stamps = _datetime64(iso) + us
    return np.char.add(np.datetime_as_string(stamps, unit="us"), "Z")


# --------------------------------------------------------------------------------------------- records
def channels_from_id(record_id: str) -> tuple[str, str, str]:
    """Channel codes ``XXZ, XXN, XXE`` from an id ``NET.STA.LOC.XX?`` (``???`` when it names none)."""
    parts = record_id.split(".")
    stem = parts[3].rstrip("?") if len(parts) == 4 else ""
    stem = (stem[:2] if len(stem) >= 2 else stem.ljust(2, "?")) if stem else "??"
    return tuple(stem + c for c in COMPONENTS)  # type: ignore[return-value]


@dataclass(eq=False)
class Record:
    """One three-component station record: ``data`` float32 ``[3, L]`` in Z, N, E order.

    Construction checks and normalises: ``data`` becomes a float32 copy (the caller's array is never kept
    or modified) and must be real, ``[3, L]`` with ``L >= 1`` and finite (NaN/Inf: a one-line
    :class:`TraceDataError` naming the record, the count and the first bad sample); ``sampling_rate`` positive;
    ``starttime`` any ISO 8601 time, kept as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC); ``channels`` default from the
    id (``NET.STA.LOC.EH?`` -> EHZ, EHN, EHE); ``p_sample``/``s_sample`` in samples from the record start."""

    id: str
    data: np.ndarray
    sampling_rate: float
    starttime: str = "1970-01-01T00:00:00.000000Z"
    channels: tuple[str, str, str] | None = None
    p_sample: float = float("nan")
    s_sample: float = float("nan")
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.id = str(self.id)
        arr = np.asarray(self.data)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            raise TraceDataError(f"record {self.id}: samples must be real numbers, got dtype {arr.dtype}")
        if arr.ndim != 2 or arr.shape[0] != 3 or arr.shape[1] < 1:
            raise TraceDataError(f"record {self.id}: data must be [3, samples] (Z, N, E), got shape {tuple(arr.shape)}")
        self.data = np.array(arr, dtype=np.float32, order="C", copy=True)
        bad = ~np.isfinite(self.data)
        if bad.any():
            c, t = (int(i) for i in np.argwhere(bad)[0])
            raise TraceDataError(
                f"record {self.id} holds {int(bad.sum())} NaN or infinite samples "
                f"(first: component {COMPONENTS[c]}, sample {t})"
            )
        rate = float(self.sampling_rate)
        if not (np.isfinite(rate) and rate > 0):
            raise TraceDataError(f"record {self.id}: sampling rate must be positive (Hz), got {self.sampling_rate}")
        self.sampling_rate = rate
        self.starttime = iso_time(self.starttime)
        channels = channels_from_id(self.id) if self.channels is None else tuple(str(c) for c in self.channels)
        if len(channels) != 3:
            raise TraceDataError(f"record {self.id}: 3 channel codes (Z, N, E) needed, got {list(channels)}")
        self.channels = channels  # type: ignore[assignment]
        self.p_sample = float(self.p_sample) if self.p_sample is not None else float("nan")
        self.s_sample = float(self.s_sample) if self.s_sample is not None else float("nan")
        self.notes = [str(n) for n in self.notes]

    @property
    def n_samples(self) -> int:
        """Samples per component."""
        return int(self.data.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds (``n_samples / sampling_rate``)."""
        return self.n_samples / self.sampling_rate

    def info(self, pad: int = 0) -> RecordInfo:
        """This record's metadata (no samples), with ``pad`` zero samples appended for windowing."""
        return RecordInfo(
            id=self.id,
            starttime=self.starttime,
            channels=tuple(self.channels),  # type: ignore[arg-type]
            length=self.n_samples,
            pad=int(pad),
            p_sample=self.p_sample,
            s_sample=self.s_sample,
            notes=list(self.notes),
        )


@dataclass(frozen=True)
class RecordInfo:
    """Metadata of a windowed record: id, start, channel codes, length (samples, before padding), pad, picks,
    notes."""

    id: str
    starttime: str
    channels: tuple[str, str, str]
    length: int
    pad: int = 0
    p_sample: float = float("nan")
    s_sample: float = float("nan")
    notes: list[str] = field(default_factory=list)


def resample_record(record: Record, sampling_rate: float) -> Record:
    """``record`` resampled to ``sampling_rate`` (polyphase, ``scipy.signal.resample_poly``, anti-alias filter
    included, all components at once) with picks rescaled and a note naming both rates; ``record`` itself when
    the rate already matches (a rate within 1e-6 of the target, as float32 headers store 100 Hz, is taken as it).
    The rate ratio is taken as a fraction with a denominator up to 1000; a ratio that no such fraction matches
    within 1e-6 is a one-line :class:`TraceDataError`."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    target = float(sampling_rate)
    if not (np.isfinite(target) and target > 0):
        raise TraceDataError(f"target sampling rate must be positive (Hz), got {sampling_rate}")
    if np.isclose(record.sampling_rate, target, rtol=1e-9, atol=0):
        return record
    ratio = Fraction(target / record.sampling_rate).limit_denominator(1000)
    if abs(float(ratio) * record.sampling_rate / target - 1) > 1e-6:
        raise TraceDataError(
            f"record {record.id}: cannot resample {record.sampling_rate:g} Hz to {target:g} Hz "
            f"(no ratio with a denominator up to 1000)"
        )
    up, down = ratio.numerator, ratio.denominator
    if up == down:  # within 1e-6 of the target (a rate stored as float32, e.g. AH files): the same rate
        return replace(record, data=record.data, sampling_rate=target)
    data = resample_poly(record.data.astype(np.float64), up, down, axis=-1).astype(np.float32)
    if data.shape[1] < 1:
        raise TraceDataError(f"record {record.id}: {record.n_samples} samples are too few to resample")
    scale = target / record.sampling_rate
    return replace(
        record,
        data=data,
        sampling_rate=target,
        p_sample=record.p_sample * scale,
        s_sample=record.s_sample * scale,
        notes=[*record.notes, f"resampled from {record.sampling_rate:g} Hz to {target:g} Hz (polyphase {up}/{down})"],
    )


# --------------------------------------------------------------------------------------------- windows
@dataclass(eq=False)
class WindowSet:
    """Fixed-length 3-C windows of records: ``data`` float32 ``[M, 3, W]``, ``record[i]`` the index in
    ``records`` (metadata) of window ``i`` and ``offset[i]`` its first sample in that record."""

    data: np.ndarray
    record: np.ndarray
    offset: np.ndarray
    records: list[RecordInfo]
    sampling_rate: float
    hop: int = DEFAULT_HOP

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        self.record = np.asarray(self.record, dtype=np.int64)
        self.offset = np.asarray(self.offset, dtype=np.int64)
        if self.data.ndim != 3 or self.data.shape[1] != 3:
            raise TraceDataError(f"windows must be [windows, 3, samples], got shape {self.data.shape}")
        m = self.data.shape[0]
        if self.record.shape != (m,) or self.offset.shape != (m,):
            raise TraceDataError(f"{m} windows but {self.record.size} record indices and {self.offset.size} offsets")
        if m and (self.record.min() < 0 or self.record.max() >= len(self.records)):
            raise TraceDataError(f"window record indices must lie in [0, {len(self.records)})")

    @property
    def length(self) -> int:
        """Samples per window (W)."""
        return int(self.data.shape[2])

    @property
    def n_windows(self) -> int:
        """Number of windows (M)."""
        return int(self.data.shape[0])

    def picks(self) -> tuple[np.ndarray, np.ndarray]:
        """P and S picks in window samples, ``float64[M]`` each; NaN when unknown or outside the window."""
        p = np.array([r.p_sample for r in self.records], dtype=np.float64)[self.record] - self.offset
        s = np.array([r.s_sample for r in self.records], dtype=np.float64)[self.record] - self.offset
        inside = lambda v: np.where((v >= 0) & (v < self.length), v, np.nan)  # noqa: E731
        return inside(p), inside(s)

    def starts(self) -> np.ndarray:
        """Start time of every window (ISO 8601 UTC strings)."""
        out = np.empty(self.n_windows, dtype=object)
        for r in np.unique(self.record):  # one vectorised call per record
            sel = self.record == r
            out[sel] = shifted_time(self.records[r].starttime, self.offset[sel], self.sampling_rate)
        return out.astype(str)

    def with_data(self, data: np.ndarray) -> WindowSet:
        """The same windows holding ``data`` (e.g. denoised), checked to have the same shape (copied)."""
        data = np.asarray(data)
        if data.shape != self.data.shape:
            raise TraceDataError(f"window data of shape {data.shape} given for windows of shape {self.data.shape}")
        return WindowSet(np.array(data, dtype=np.float32), self.record.copy(), self.offset.copy(),
                         list(self.records), self.sampling_rate, self.hop)  # fmt: skip


def window_offsets(n: int, length: int, hop: int) -> np.ndarray:
    """Window starts for a record of ``n >= length`` samples: ``0, hop, 2 hop, ...`` while a window fits, plus
    ``n - length`` when those miss the end."""
    offsets = np.arange(0, n - length + 1, hop, dtype=np.int64)
    if offsets[-1] != n - length:
        offsets = np.append(offsets, n - length)
    return offsets


def records_to_windows(
    records: Sequence[Record],
    length: int = DEFAULT_LENGTH,
    hop: int = DEFAULT_HOP,
    *,
    min_length: int | None = None,
    sampling_rate: float | None = None,
) -> WindowSet:
    """Cut ``records`` into ``length``-sample windows every ``hop`` samples (see the module docstring).

    ``min_length`` (default ``length // 2``): shorter records are refused, records between it and ``length``
    are zero-padded at the end (pad recorded in their :class:`RecordInfo` and notes). ``sampling_rate``: records
    at another rate are resampled to it (:func:`resample_record`, noted); without it every record must share
    one rate. ``hop`` must lie in ``[1, length]`` so windows cover each record. Records are not modified."""
    length, hop = int(length), int(hop)
    if length < 2:
        raise TraceDataError(f"window length must be at least 2 samples, got {length}")
    if not 1 <= hop <= length:
        raise TraceDataError(f"hop must lie in [1, {length}] samples (the window length), got {hop}")
    min_length = length // 2 if min_length is None else int(min_length)
    if not 1 <= min_length <= length:
        raise TraceDataError(f"min_length must lie in [1, {length}] samples, got {min_length}")
    records = list(records)
    if not records:
        raise TraceDataError("no records to cut into windows")
    for r in records:
        if not isinstance(r, Record):
            raise TraceDataError(f"records must be seiscore.data.traces.Record, got {type(r).__name__}")
    if sampling_rate is not None:
        records = [resample_record(r, sampling_rate) for r in records]
    rate = records[0].sampling_rate
    for r in records:
        if not np.isclose(r.sampling_rate, rate, rtol=1e-9, atol=0):
            raise TraceDataError(
                f"record {r.id} is sampled at {r.sampling_rate:g} Hz but record {records[0].id} at {rate:g} Hz; "
                f"give sampling_rate to resample them to one rate"
            )
    infos, blocks, rec_idx, offs = [], [], [], []
    for i, r in enumerate(records):  # one vectorised cut per record
        n = r.n_samples
        if n < min_length:
            raise TraceDataError(
                f"record {r.id} holds {n} samples ({n / rate:g} s); at least {min_length} are needed "
                f"(windows of {length} samples, shorter records are zero-padded down to {min_length})"
            )
        pad = max(0, length - n)
        data = r.data
        notes = list(r.notes)
        if pad:
            data = np.concatenate([data, np.zeros((3, pad), dtype=np.float32)], axis=1)
            notes.append(f"padded with {pad} zero samples to one {length}-sample window")
        offsets = window_offsets(data.shape[1], length, hop)
        view = np.lib.stride_tricks.sliding_window_view(data, length, axis=1)  # [3, n-length+1, length]
        blocks.append(np.ascontiguousarray(view[:, offsets].transpose(1, 0, 2)))
        rec_idx.append(np.full(offsets.size, i, dtype=np.int64))
        offs.append(offsets)
        infos.append(replace(r.info(pad), notes=notes))
    return WindowSet(
        data=np.concatenate(blocks),
        record=np.concatenate(rec_idx),
        offset=np.concatenate(offs),
        records=infos,
        sampling_rate=rate,
        hop=hop,
    )


def _ramps(windows: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """Per window, its overlap (samples) with the previous and with the next window of the same record."""
    w = windows.length
    order = np.lexsort((windows.offset, windows.record))
    rec, off = windows.record[order], windows.offset[order]
    same_prev = np.r_[False, rec[1:] == rec[:-1]]
    same_next = np.r_[rec[1:] == rec[:-1], False]
    prev_end = np.r_[0, off[:-1] + w]
    next_start = np.r_[off[1:], 0]
    rise, fall = np.empty_like(off), np.empty_like(off)
    rise[order] = np.where(same_prev, np.clip(prev_end - off, 0, w), 0)
    fall[order] = np.where(same_next, np.clip(off + w - next_start, 0, w), 0)
    return rise, fall


def _weights(rise: np.ndarray, fall: np.ndarray, w: int) -> np.ndarray:
    """Cross-fade weights ``float64[len(rise), w]`` from the windows' overlaps (:func:`crossfade_weights`)."""
    t = np.arange(w, dtype=np.float64)[None, :]
    up = np.where(t < rise[:, None], np.sin(0.5 * np.pi * (t + 0.5) / np.maximum(rise, 1)[:, None]) ** 2, 1.0)
    tail = t - (w - fall)[:, None]
    down = np.where(tail >= 0, np.cos(0.5 * np.pi * (tail + 0.5) / np.maximum(fall, 1)[:, None]) ** 2, 1.0)
    return up * down


def crossfade_weights(windows: WindowSet) -> np.ndarray:
    """Weights ``float64[M, W]`` of the cosine cross-fade (module docstring): ``sin^2`` rising over the overlap
    with the previous window of the same record, ``cos^2`` falling over the overlap with the next, 1 elsewhere."""
    return _weights(*_ramps(windows), windows.length)


def windows_to_records(windows: WindowSet, data: np.ndarray | None = None) -> list[Record]:
    """Records rebuilt from ``windows`` holding ``data`` (default ``windows.data``; ``[M, 3, W]``) by the
    normalised cosine cross-fade of the module docstring, padding cut off. Exact where overlapping windows
    agree (e.g. ``windows_to_records(records_to_windows(r)) == r`` to float32 rounding). Metadata (id, start,
    channels, picks, notes) from ``windows.records``; ``data`` is not modified."""
    y = windows.data if data is None else np.asarray(data)
    if y.shape != windows.data.shape:
        raise TraceDataError(f"window data of shape {y.shape} given for windows of shape {windows.data.shape}")
    if not np.isfinite(y).all():
        i = int(np.argwhere(~np.isfinite(y))[0][0])
        raise TraceDataError(
            f"window {i} (record {windows.records[windows.record[i]].id}) holds NaN or infinite samples"
        )
    w = windows.length
    rise, fall = _ramps(windows)
    out: list[Record] = []
    t = np.arange(w, dtype=np.int64)
    for r, info in enumerate(windows.records):  # per record; windows accumulated in vectorised batches
        sel = np.flatnonzero(windows.record == r)
        if sel.size == 0:
            raise TraceDataError(f"record {info.id} has no windows to rebuild it from")
        total = int(windows.offset[sel].max()) + w
        acc = np.zeros((3, total), dtype=np.float64)
        norm = np.zeros(total, dtype=np.float64)
        for b in range(0, sel.size, _MERGE_BATCH):
            part = sel[b : b + _MERGE_BATCH]
            lo = int(windows.offset[part].min())
            hi = int(windows.offset[part].max()) + w  # the batch's span: accumulate there only
            idx = (windows.offset[part][:, None] - lo + t[None, :]).ravel()
            wt = _weights(rise[part], fall[part], w)  # per batch: bounded memory
            norm[lo:hi] += np.bincount(idx, wt.ravel(), minlength=hi - lo)
            for c in range(3):  # the three components
                acc[c, lo:hi] += np.bincount(idx, (wt * y[part, c]).ravel(), minlength=hi - lo)
        if (norm[: info.length] <= 0).any():
            raise TraceDataError(f"record {info.id}: its windows do not cover samples 0..{info.length - 1}")
        merged = (acc[:, : info.length] / norm[None, : info.length]).astype(np.float32)
        out.append(
            Record(
                id=info.id,
                data=merged,
                sampling_rate=windows.sampling_rate,
                starttime=info.starttime,
                channels=info.channels,
                p_sample=info.p_sample,
                s_sample=info.s_sample,
                notes=list(info.notes),
            )
        )
    return out


# -------------------------------------------------------------------------------------------- the store
def _dataset(windows: WindowSet, attrs: dict[str, Any] | None, data: np.ndarray | None = None):
    import xarray as xr

    arr = windows.data if data is None else data
    m, _, w = arr.shape
    infos = windows.records
    p, s = windows.picks()
    coords: dict[str, Any] = {
        "trace": np.arange(m, dtype=np.int64),
        "component": np.asarray(COMPONENTS, dtype=object),
        "time": np.arange(w, dtype=np.float64) / windows.sampling_rate,
        "record_index": ("trace", windows.record),
        "offset": ("trace", windows.offset),
        "station": ("trace", np.asarray([r.id for r in infos], dtype=object)[windows.record]),
        "start": ("trace", windows.starts().astype(object)),
        "p_sample": ("trace", p),
        "s_sample": ("trace", s),
        "record": np.arange(len(infos), dtype=np.int64),
        "record_id": ("record", np.asarray([r.id for r in infos], dtype=object)),
        "record_start": ("record", np.asarray([r.starttime for r in infos], dtype=object)),
        "record_length": ("record", np.asarray([r.length for r in infos], dtype=np.int64)),
        "record_pad": ("record", np.asarray([r.pad for r in infos], dtype=np.int64)),
        "record_channels": (("record", "component"), np.asarray([list(r.channels) for r in infos], dtype=object)),
        "record_p_sample": ("record", np.asarray([r.p_sample for r in infos], dtype=np.float64)),
        "record_s_sample": ("record", np.asarray([r.s_sample for r in infos], dtype=np.float64)),
        "record_notes": ("record", np.asarray([json.dumps(r.notes) for r in infos], dtype=object)),
    }
    ds = xr.Dataset({KIND.variable: (KIND.dims, arr)}, coords=coords)
    ds["time"].attrs["units"] = "s"
    ds["p_sample"].attrs["long_name"] = ds["s_sample"].attrs["long_name"] = "pick in window samples (NaN: none)"
    finite = arr.size > 0
    ds.attrs = {
        **(attrs or {}),
        "kind": KIND.name,
        "sampling_rate": float(windows.sampling_rate),
        "window_length": int(w),
        "hop": int(windows.hop),
        "components": "".join(COMPONENTS),
        "n_records": len(infos),
        "value_min": float(arr.min()) if finite else 0.0,
        "value_max": float(arr.max()) if finite else 0.0,
    }
    # the same range under the names the run modes read (no pass over the store for min-max scaling)
    ds.attrs.update({AMPLITUDE_MIN_ATTR: ds.attrs["value_min"], AMPLITUDE_MAX_ATTR: ds.attrs["value_max"]})
    return ds


def _check_windows(windows: WindowSet) -> None:
    if not isinstance(windows, WindowSet):
        raise TraceDataError(f"windows must be a seiscore.data.traces.WindowSet, got {type(windows).__name__}")
    if windows.n_windows == 0:
        raise TraceDataError("no windows to write")
    bad = ~np.isfinite(windows.data)
    if bad.any():
        i, c, t = (int(v) for v in np.argwhere(bad)[0])
        raise TraceDataError(
            f"window {i} (record {windows.records[windows.record[i]].id}) holds NaN or infinite samples "
            f"({int(bad.sum())} in all; first: component {COMPONENTS[c]}, sample {t})"
        )


def write_trace_store(
    path: str | os.PathLike,
    windows: WindowSet,
    *,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
    roots: Iterable[str | os.PathLike] | None = None,
) -> Path:
    """Write ``windows`` as a complete trace store at ``path`` (layout: module docstring); return it resolved.

    The windows are checked first (finite samples: one-line :class:`TraceDataError`); the store is written under
    a temporary sibling, removed on failure, and renamed into place when whole, flagged complete and marked as
    the product's. An existing store is replaced only with ``overwrite`` and only when the product wrote it;
    ``roots`` (data roots) as in :func:`seiscore.core.safety.check_write_target`."""
    from seiscore.core.safety import STORE_MARK_ATTR, check_write_target
    from seiscore.io.os_errors import removed_on_failure
    from seiscore.io.store import consolidate, prepare_target, publish

    if roots is not None:
        check_write_target(path, what="trace store", roots=roots, replace=True)
    _check_windows(windows)
    final, tmp = prepare_target(path, overwrite, what="trace store")
    ds = _dataset(windows, attrs)
    ds.attrs.update({STORE_MARK_ATTR: 1, COMPLETE_ATTR: False})
    chunks = (min(CHUNK_TRACES, windows.n_windows), 3, windows.length)
    with removed_on_failure(tmp):
        ds.to_zarr(str(tmp), mode="w", encoding={KIND.variable: {"chunks": chunks}}, consolidated=False,
                   zarr_format=3)  # fmt: skip
        publish(tmp, final, attrs={COMPLETE_ATTR: True})
    consolidate(final)
    return final


def create_trace_output(
    input_store: str | os.PathLike,
    output_store: str | os.PathLike,
    *,
    chunks: Sequence[int] | None = None,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """An output trace store with every coordinate of the complete ``input_store`` and an empty ``amplitude``
    (fill 0, no chunk written; ``chunks`` default the input's), NOT flagged complete: a ``per_item`` run fills
    it, then :func:`mark_trace_store_complete`. Built under a temporary sibling and renamed into place; never
    inside, equal to or containing the input store."""
    import zarr

    from seiscore.core.safety import STORE_MARK_ATTR
    from seiscore.io.os_errors import removed_on_failure
    from seiscore.io.store import prepare_target, publish

    src = Path(input_store)
    ds = open_trace_store(src)
    final, tmp = prepare_target(
        output_store, overwrite, what="output trace store", protected=[("input trace store", src)]
    )
    shape = ds[KIND.variable].shape
    in_chunks = zarr.open_group(str(src), mode="r")[KIND.variable].chunks
    chunks = tuple(int(c) for c in (chunks or in_chunks))
    if len(chunks) != 3:
        raise TraceDataError(f"output chunks must name 3 dims (trace, component, time), got {chunks}")
    out = ds.drop_vars(KIND.variable)
    out.attrs = {
        **{k: v for k, v in ds.attrs.items() if k not in (COMPLETE_ATTR, *_RANGE_ATTRS)},
        **(attrs or {}),
        "source_store": str(src.resolve()),
        STORE_MARK_ATTR: 1,
        COMPLETE_ATTR: False,
    }
    for name in out.variables:
        out[name].encoding = {}
    with removed_on_failure(tmp):
        out.to_zarr(str(tmp), mode="w", consolidated=False, zarr_format=3)
        g = zarr.open_group(str(tmp), mode="r+", use_consolidated=False)
        g.create_array(
            KIND.variable, shape=shape, chunks=chunks, dtype="float32", fill_value=0.0, dimension_names=KIND.dims,
            attributes={"coordinates": " ".join(KIND.coords)},
        )  # fmt: skip
        publish(tmp, final)
    return final


def mark_trace_store_complete(path: str | os.PathLike) -> Path:
    """Flag a filled output trace store whole: its value range measured, ``seiscore_complete`` set, metadata
    consolidated."""
    import zarr

    from seiscore.io.store import consolidate

    path = Path(path)
    g = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    if g.attrs.get("kind") != KIND.name or KIND.variable not in g:
        raise TraceDataError(f"{path} is not a trace store")
    amp = g[KIND.variable]
    lo, hi = np.inf, -np.inf
    step = max(1, amp.chunks[0])
    for a in range(0, amp.shape[0], step):  # chunk rows: bounded memory
        block = amp[a : a + step]
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    lo, hi = (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else (0.0, 0.0)
    g.attrs.update({"value_min": lo, "value_max": hi, AMPLITUDE_MIN_ATTR: lo, AMPLITUDE_MAX_ATTR: hi,
                    COMPLETE_ATTR: True})  # fmt: skip
    consolidate(path)
    return path


def _store_attrs(path: Path) -> dict[str, Any] | None:
    from seiscore.io.store import local_root_attrs

    return local_root_attrs(path)


def is_trace_store(path: str | os.PathLike) -> bool:
    """True when ``path`` is a complete trace store."""
    a = _store_attrs(Path(path))
    return a is not None and a.get("kind") == KIND.name and bool(a.get(COMPLETE_ATTR))


def open_trace_store(path: str | os.PathLike, *, require_complete: bool = True):
    """The trace store at ``path`` as a lazy ``xarray.Dataset``; one-line errors when it is missing, of another
    kind, or incomplete (unless ``require_complete=False``)."""
    import xarray as xr

    from seiscore.io.store import has_consolidated_metadata

    path = Path(path)
    a = _store_attrs(path)
    if a is None:
        raise FileNotFoundError(f"trace store {path} does not exist")
    if a.get("kind") != KIND.name:
        raise TraceDataError(f"{path} is not a trace store (kind {a.get('kind')!r})")
    if require_complete and not a.get(COMPLETE_ATTR):
        raise TraceDataError(f"trace store {path} is incomplete (an interrupted write or run); rebuild it")
    return xr.open_zarr(str(path), consolidated=has_consolidated_metadata(path))


def _record_infos(ds) -> list[RecordInfo]:
    channels = ds["record_channels"].values
    return [
        RecordInfo(
            id=str(rid),
            starttime=str(start),
            channels=tuple(str(c) for c in channels[i]),  # type: ignore[arg-type]
            length=int(n),
            pad=int(pad),
            p_sample=float(p),
            s_sample=float(s),
            notes=[str(x) for x in json.loads(str(notes))],
        )
        for i, (rid, start, n, pad, p, s, notes) in enumerate(
            zip(
                ds["record_id"].values,
                ds["record_start"].values,
                ds["record_length"].values,
                ds["record_pad"].values,
                ds["record_p_sample"].values,
                ds["record_s_sample"].values,
                ds["record_notes"].values,
            )
        )
    ]


def _garbled(path, exc: Exception) -> TraceDataError:
    if isinstance(exc, TraceDataError):
        return exc
    return TraceDataError(f"trace store {path} lacks or garbles {str(exc).splitlines()[0]}")


def read_trace_store(path: str | os.PathLike, *, require_complete: bool = True) -> WindowSet:
    """The :class:`WindowSet` of the trace store at ``path`` (all windows in memory; see
    :func:`iter_store_records` for one record at a time)."""
    ds = open_trace_store(path, require_complete=require_complete)
    try:
        return WindowSet(
            data=np.ascontiguousarray(ds[KIND.variable].values, dtype=np.float32),
            record=ds["record_index"].values,
            offset=ds["offset"].values,
            records=_record_infos(ds),
            sampling_rate=float(ds.attrs["sampling_rate"]),
            hop=int(ds.attrs.get("hop", DEFAULT_HOP)),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise _garbled(path, exc) from None


def iter_store_records(path: str | os.PathLike, *, require_complete: bool = True) -> Iterator[Record]:
    """The records of the trace store at ``path``, one at a time, each merged from its windows by the cross-fade
    (:func:`windows_to_records`): only one record's windows are in memory (a day of one station at 100 Hz with
    hop 1500 is ~200 MB of windows), e.g. to export a night's output to MiniSEED."""
    ds = open_trace_store(path, require_complete=require_complete)
    try:
        infos = _record_infos(ds)
        rec_idx = ds["record_index"].values
        offsets = ds["offset"].values
        rate = float(ds.attrs["sampling_rate"])
        hop = int(ds.attrs.get("hop", DEFAULT_HOP))
    except (KeyError, ValueError, TypeError) as exc:
        raise _garbled(path, exc) from None
    amp = ds[KIND.variable]
    for r, info in enumerate(infos):  # one record at a time
        sel = np.flatnonzero(rec_idx == r)
        if sel.size == 0:
            raise TraceDataError(f"trace store {path}: record {info.id} has no windows")
        lo, hi = int(sel[0]), int(sel[-1]) + 1
        block = amp.isel(trace=slice(lo, hi)).values if hi - lo == sel.size else amp.isel(trace=sel).values
        windows = WindowSet(np.asarray(block, dtype=np.float32), np.zeros(sel.size, dtype=np.int64), offsets[sel],
                            [info], rate, hop)  # fmt: skip
        yield windows_to_records(windows)[0]


def trace_store_info(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a trace store (what ``seis traces info`` prints): windows, records, rate, window length and
    hop, value range, completeness, and per record its id, start, duration, channels, picks and notes."""
    path = Path(path)
    ds = open_trace_store(path, require_complete=False)
    rate = float(ds.attrs.get("sampling_rate", 0.0))
    records = []
    for rid, start, n, chans, p, s, notes, nwin in zip(
        ds["record_id"].values,
        ds["record_start"].values,
        ds["record_length"].values,
        ds["record_channels"].values,
        ds["record_p_sample"].values,
        ds["record_s_sample"].values,
        ds["record_notes"].values,
        np.bincount(ds["record_index"].values, minlength=ds.sizes["record"]),
    ):
        records.append(
            {
                "id": str(rid),
                "start": str(start),
                "samples": int(n),
                "duration_s": int(n) / rate if rate else None,
                "channels": [str(c) for c in chans],
                "p_sample": None if np.isnan(p) else float(p),
                "s_sample": None if np.isnan(s) else float(s),
                "windows": int(nwin),
                "notes": json.loads(str(notes)),
            }
        )
    return {
        "path": str(path.resolve()),
        "kind": KIND.name,
        "complete": bool(ds.attrs.get(COMPLETE_ATTR, False)),
        "windows": int(ds.sizes["trace"]),
        "window_length": int(ds.sizes["time"]),
        "hop": int(ds.attrs.get("hop", 0)),
        "sampling_rate": rate,
        "n_records": int(ds.sizes["record"]),
        "value_min": ds.attrs.get("value_min"),
        "value_max": ds.attrs.get("value_max"),
        "records": records,
    }
