"""Three-component records in and out: waveform files through ObsPy, the STEAD layout, MiniSEED export.

:func:`read_waveforms` reads every format ObsPy reads (MiniSEED, SAC, SEISAN, GSE2, SEG-Y/SU, Kinemetrics,
...; the format is detected from the file). Traces are grouped into records by ``NET.STA.LOC`` and the first
two channel letters (band and instrument: ``EH?``, ``HH?``), so one station with two instruments gives two
records. Per record:

- components by the channel's last letter: ``Z``, ``N``, ``E``; ``1`` and ``2`` are taken as ``N`` and ``E``
  (not rotated: the note says so); any other letter, or two channels for one component, is a one-line error;
- gaps and overlaps (several traces of one channel, also across files) are merged: overlaps keep the later
  trace, gaps are filled by linear interpolation between their edges; a note counts both and their seconds;
- the components are cut to their common time span (a note when that trims more than a sample);
- a missing component is a one-line :class:`~seiscore.data.traces.TraceDataError` naming the record and what it
  has (``missing="error"``, the default) or, with ``missing="zero"``, a zero component and a note;
- resampled to ``sampling_rate`` (the model's, 100 Hz) with the original rate in a note
  (:func:`~seiscore.data.traces.resample_record`); SAC picks (header ``a`` = P, ``t0`` = S) are kept.

:func:`read_stead` reads the STEAD layout: an HDF5 file with one dataset ``data/<trace_name>`` of shape
``(samples, 3)`` in E, N, Z order per trace, and a CSV with at least ``trace_name``, ``p_arrival_sample`` and
``s_arrival_sample`` (optional: ``network_code``, ``receiver_code``, ``receiver_type``, ``trace_start_time``,
``trace_category``); one dataset is read per trace (the layout's unit), rows in the CSV's order.
:func:`read_stead_frame` reads the CDiffSD subsample's layout (a DataFrame or pickle with ``Z/N/E_channel``
columns of samples).

:func:`write_mseed` writes records back to one MiniSEED file (float32 samples, one trace per component,
atomically, product-marked); picks and notes do not travel in MiniSEED.
"""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from seiscore.data.traces import (
    COMPONENTS,
    DEFAULT_HOP,
    DEFAULT_LENGTH,
    Record,
    TraceDataError,
    iso_time,
    records_to_windows,
    resample_record,
    write_trace_store,
)

COMPONENT_CODES = {"Z": "Z", "N": "N", "E": "E", "1": "N", "2": "E"}
STEAD_REQUIRED = ("trace_name", "p_arrival_sample", "s_arrival_sample")
STEAD_OPTIONAL = ("network_code", "receiver_code", "receiver_type", "trace_start_time", "trace_category")
STEAD_RATE = 100.0
_SAC_UNSET = -12345.0


# ------------------------------------------------------------------------------------------------ paths
def expand_paths(paths_or_globs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by ``paths_or_globs`` (paths, glob patterns, or folders: their non-hidden files), in order,
    without repeats; a path or pattern that names nothing is a one-line ``FileNotFoundError``."""
    items = [paths_or_globs] if isinstance(paths_or_globs, (str, os.PathLike)) else list(paths_or_globs)
    if not items:
        raise FileNotFoundError("no waveform files given")
    out: list[Path] = []
    for item in items:
        text = os.path.expanduser(os.fspath(item))
        if glob.has_magic(text):
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file()]
            if not found:
                raise FileNotFoundError(f"no waveform file matches {text}")
        elif Path(text).is_dir():
            found = sorted(p for p in Path(text).iterdir() if p.is_file() and not p.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"folder {text} holds no waveform files")
        elif Path(text).is_file():
            found = [Path(text)]
        else:
            raise FileNotFoundError(f"waveform file {text} does not exist")
        out.extend(p for p in found if p not in out)
    return out


# ----------------------------------------------------------------------------------------------- ObsPy
def _read_stream(paths: list[Path], fmt: str | None):
    import obspy

    from seiscore.core.progress import report

    stream = obspy.Stream()
    for i, path in enumerate(paths):  # one ObsPy read per file
        try:
            with warnings.catch_warnings():  # format readers warn about header details: quiet logs
                warnings.simplefilter("ignore")
                part = obspy.read(str(path), format=fmt) if fmt else obspy.read(str(path))
        except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for unreadable files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TraceDataError(f"{path} is not a waveform file ObsPy reads ({reason})") from None
        for tr in part:
            tr.stats["seiscore_file"] = str(path)
        stream += part
        report("files", "read waveforms", i + 1, len(paths))
    if not len(stream):
        raise TraceDataError(f"{', '.join(map(str, paths[:3]))} hold no traces")
    return stream


def _group(stream) -> dict[str, dict[str, list]]:
    """{record id: {component: [traces]}} (record ids NET.STA.LOC.XX?)."""
    groups: dict[str, dict[str, list]] = {}
    for tr in stream:
        s = tr.stats
        cha = s.channel or "???"
        rid = f"{s.network}.{s.station}.{s.location}.{cha[:-1]}?"
        code = cha[-1].upper()
        if code not in COMPONENT_CODES:
            raise TraceDataError(f"record {rid}: channel {cha} is not a Z/N/E (or 1/2) component ({s.seiscore_file})")
        groups.setdefault(rid, {}).setdefault(COMPONENT_CODES[code], []).append(tr)
    return groups


def _merge_component(rid: str, comp: str, traces: list, notes: list[str]):
    """One trace from the traces of one component: overlaps keep the later data, gaps interpolated."""
    import obspy

    channels = sorted({t.stats.channel for t in traces})
    if len(channels) > 1:
        raise TraceDataError(
            f"record {rid}: channels {' and '.join(channels)} both give component {comp}; keep one of them"
        )
    rates = sorted({float(t.stats.sampling_rate) for t in traces})
    if len(rates) > 1:
        raise TraceDataError(
            f"record {rid}: channel {channels[0]} changes sampling rate ({', '.join(f'{r:g}' for r in rates)} Hz)"
        )
    st = obspy.Stream([t.copy() for t in traces])
    for t in st:
        t.data = np.asarray(t.data, dtype=np.float64)
    if len(st) > 1:
        gaps = st.get_gaps()
        n_gap = sum(1 for g in gaps if g[6] > 0)
        n_over = sum(1 for g in gaps if g[6] < 0)
        gap_s = sum(g[6] for g in gaps if g[6] > 0)
        over_s = -sum(g[6] for g in gaps if g[6] < 0)
        st.merge(method=1, fill_value="interpolate")
        if len(st) != 1:
            raise TraceDataError(f"record {rid}: traces of channel {channels[0]} could not be merged into one")
        parts = []
        if n_gap:
            parts.append(f"{n_gap} gap(s), {gap_s:.3f} s, filled by linear interpolation")
        if n_over:
            parts.append(f"{n_over} overlap(s), {over_s:.3f} s, later data kept")
        if parts:
            notes.append(f"channel {channels[0]}: " + "; ".join(parts))
    tr = st[0]
    if np.ma.isMaskedArray(tr.data):
        tr.data = np.ma.filled(tr.data, np.nan)
    return tr


def _sac_pick(tr, key: str) -> float:
    sac = tr.stats.get("sac")
    if not sac or key not in sac or float(sac[key]) == _SAC_UNSET:
        return float("nan")
    begin = float(sac.get("b", 0.0))
    return (float(sac[key]) - begin) * float(tr.stats.sampling_rate)


def _record(rid: str, comps: dict[str, Any], missing: str) -> Record:
    notes: list[str] = []
    absent = [c for c in COMPONENTS if c not in comps]
    if absent and (missing != "zero" or len(absent) == 3):
        have = ", ".join(c for c in COMPONENTS if c in comps) or "none"
        raise TraceDataError(
            f"record {rid}: missing component(s) {', '.join(absent)} (has {have}); "
            f"three components Z/N/E are needed (missing='zero' fills them with zeros)"
        )
    merged = {c: _merge_component(rid, c, comps[c], notes) for c in COMPONENTS if c in comps}
    codes = {t.stats.channel[-1] for t in merged.values()}
    if codes & {"1", "2"}:
        notes.append("components 1/2 taken as N/E (not rotated)")
    rates = {float(t.stats.sampling_rate) for t in merged.values()}
    if len(rates) > 1:
        raise TraceDataError(
            f"record {rid}: components sampled at different rates ({', '.join(f'{r:g}' for r in sorted(rates))} Hz)"
        )
    rate = rates.pop()
    start = max(t.stats.starttime for t in merged.values())
    end = min(t.stats.endtime for t in merged.values())
    if end < start:
        raise TraceDataError(f"record {rid}: its components do not overlap in time")
    pick_trace = merged["Z"] if "Z" in merged else next(iter(merged.values()))
    # SAC picks are relative to their trace's own start; the record starts at the common start
    shift = (pick_trace.stats.starttime - start) * rate
    picks = {k: _sac_pick(pick_trace, k) + shift for k in ("a", "t0")}
    trimmed = False
    for c, tr in merged.items():
        n0 = tr.stats.npts
        tr.trim(start, end, nearest_sample=True)
        trimmed |= n0 - tr.stats.npts > 1
    if trimmed:
        notes.append(f"components cut to their common span {iso_time(start)} .. {iso_time(end)}")
    n = min(t.stats.npts for t in merged.values())
    data = np.zeros((3, n), dtype=np.float64)
    for i, c in enumerate(COMPONENTS):
        if c in merged:
            data[i] = merged[c].data[:n]
    for c in absent:
        notes.append(f"component {c} missing: filled with zeros")
    first = next(iter(merged.values()))
    stem = first.stats.channel[:-1]
    channels = tuple(merged[c].stats.channel if c in merged else f"{stem}{c}" for c in COMPONENTS)
    return Record(
        id=rid,
        data=data,
        sampling_rate=rate,
        starttime=iso_time(str(first.stats.starttime)),
        channels=channels,  # type: ignore[arg-type]
        p_sample=picks["a"],
        s_sample=picks["t0"],
        notes=notes,
    )


def read_waveforms(
    paths_or_globs: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    sampling_rate: float | None = 100.0,
    missing: str = "error",
    format: str | None = None,  # noqa: A002 - ObsPy's name
) -> list[Record]:
    """Records from waveform files ObsPy reads (module docstring: grouping, components, gaps/overlaps,
    common span, missing components, resampling). ``sampling_rate`` None keeps each record's rate; ``format``
    forces an ObsPy format name instead of detection. Records in the order of their ids."""
    if missing not in ("error", "zero"):
        raise ValueError(f"missing must be 'error' or 'zero', got {missing!r}")
    paths = expand_paths(paths_or_globs)
    groups = _group(_read_stream(paths, format))
    records = [_record(rid, groups[rid], missing) for rid in sorted(groups)]
    if sampling_rate is not None:
        records = [resample_record(r, sampling_rate) for r in records]
    return records


# ------------------------------------------------------------------------------------------------- arrays
def records_from_arrays(
    data: np.ndarray,
    sampling_rate: float,
    *,
    ids: Sequence[str] | None = None,
    starttime: str | Sequence[str] = "1970-01-01T00:00:00Z",
    channels: Sequence[str] | None = None,
    p_sample: Sequence[float] | float | None = None,
    s_sample: Sequence[float] | float | None = None,
    order: str = "ZNE",
    resample_to: float | None = None,
) -> list[Record]:
    """Records from an array ``[3, L]`` or ``[N, 3, L]`` whose components come in ``order`` (a permutation of
    ``ZNE``, e.g. STEAD's ``ENZ``). ``ids`` default ``XX.T00000..HH?``, ``XX.T00001..HH?``...; ``starttime``,
    ``p_sample``, ``s_sample`` one value or one per record; ``resample_to`` resamples (noted). The input is not
    modified (each record holds a float32 copy); NaN/Inf samples are a one-line error naming the record."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != 3:
        raise TraceDataError(f"arrays must be [3, samples] or [records, 3, samples], got shape {np.shape(data)}")
    if sorted(order.upper()) != sorted("ZNE"):
        raise TraceDataError(f"component order must be a permutation of ZNE, got {order!r}")
    perm = [order.upper().index(c) for c in COMPONENTS]
    n = arr.shape[0]

    def per_record(value, what):
        if value is None or isinstance(value, (str, float, int, np.floating, np.integer)):
            return [value] * n
        values = list(value)
        if len(values) != n:
            raise TraceDataError(f"{len(values)} {what} for {n} records")
        return values

    ids = list(ids) if ids is not None else [f"XX.T{i:05d}..HH?" for i in range(n)]
    if len(ids) != n:
        raise TraceDataError(f"{len(ids)} ids for {n} records")
    starts, ps, ss = (
        per_record(starttime, "start times"),
        per_record(p_sample, "P picks"),
        per_record(s_sample, "S picks"),
    )
    out = [
        Record(
            id=ids[i],
            data=arr[i, perm],
            sampling_rate=sampling_rate,
            starttime=starts[i],
            channels=tuple(channels) if channels is not None else None,  # type: ignore[arg-type]
            p_sample=float("nan") if ps[i] is None else ps[i],
            s_sample=float("nan") if ss[i] is None else ss[i],
        )
        for i in range(n)
    ]
    return [resample_record(r, resample_to) for r in out] if resample_to is not None else out


# -------------------------------------------------------------------------------------------------- STEAD
def _stead_table(csv_path: Path, names: Sequence[str] | None):
    import pandas as pd

    if not csv_path.is_file():
        raise FileNotFoundError(f"STEAD CSV file {csv_path} does not exist")
    try:
        header = pd.read_csv(csv_path, nrows=0).columns
    except Exception as exc:  # noqa: BLE001 - pandas raises several types for unreadable text
        raise TraceDataError(f"{csv_path} is not a readable CSV file ({str(exc).splitlines()[0]})") from None
    absent = [c for c in STEAD_REQUIRED if c not in header]
    if absent:
        raise TraceDataError(
            f"STEAD CSV {csv_path} lacks column(s) {', '.join(absent)} (needs {', '.join(STEAD_REQUIRED)})"
        )
    use = [c for c in (*STEAD_REQUIRED, *STEAD_OPTIONAL) if c in header]
    table = pd.read_csv(csv_path, usecols=use, dtype={"trace_name": str}, low_memory=False)
    if names is not None:
        wanted = list(names)
        table = table.set_index("trace_name", drop=False)
        unknown = [n for n in wanted if n not in table.index]
        if unknown:
            raise TraceDataError(f"STEAD CSV {csv_path} has no trace {unknown[0]!r} ({len(unknown)} names unknown)")
        table = table.loc[wanted].reset_index(drop=True)
    if table.empty:
        raise TraceDataError(f"STEAD CSV {csv_path} lists no traces")
    for col in ("p_arrival_sample", "s_arrival_sample"):
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna() & (table[col].astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise TraceDataError(
                f"STEAD trace {table['trace_name'].iloc[i]}: {col} {table[col].iloc[i]!r} is not a number"
            )
        table[col] = values
    return table


def _text(row, key: str, default: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return default
    return str(value).strip()


def read_stead(
    hdf5_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    sampling_rate: float | None = 100.0,
) -> list[Record]:
    """Records from the STEAD layout (module docstring): the CSV's rows (or the traces ``names``, in that
    order), data from ``data/<trace_name>`` (``(samples, 3)``, E, N, Z) of the HDF5 file at STEAD's 100 Hz,
    picks from ``p_arrival_sample``/``s_arrival_sample`` (empty: NaN), ids ``NET.STA..XX?`` from the network,
    receiver and instrument codes, the trace name in the notes. Missing columns, traces absent from the HDF5
    file, wrong shapes and NaN/Inf samples are one-line :class:`TraceDataError` naming the file or trace."""
    import h5py

    from seiscore.core.progress import report

    hdf5_path, csv_path = Path(hdf5_path), Path(csv_path)
    table = _stead_table(csv_path, names)
    if not hdf5_path.is_file():
        raise FileNotFoundError(f"STEAD HDF5 file {hdf5_path} does not exist")
    try:
        h5 = h5py.File(hdf5_path, "r")
    except OSError as exc:
        raise TraceDataError(f"{hdf5_path} is not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    records: list[Record] = []
    with h5:
        if "data" not in h5 or not isinstance(h5["data"], h5py.Group):
            raise TraceDataError(f"{hdf5_path} has no 'data' group (STEAD layout: data/<trace_name>)")
        group = h5["data"]
        rows = table.to_dict("records")
        for i, row in enumerate(rows):  # one HDF5 dataset per trace: the layout's unit of reading
            name = str(row["trace_name"])
            if name not in group:
                raise TraceDataError(f"STEAD trace {name} is listed in {csv_path.name} but absent from {hdf5_path}")
            arr = np.asarray(group[name][()])
            if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
                raise TraceDataError(
                    f"STEAD trace {name} in {hdf5_path} has shape {arr.shape}; (samples, 3) in E, N, Z order expected"
                )
            net = _text(row, "network_code", "XX")
            sta = _text(row, "receiver_code", name.split(".")[0][:5] or "STEAD")
            inst = _text(row, "receiver_type", "HH")[:2]
            start = _text(row, "trace_start_time", "1970-01-01T00:00:00")
            try:
                rec = Record(
                    id=f"{net}.{sta}..{inst}?",
                    data=arr[:, ::-1].T,  # E, N, Z columns -> Z, N, E rows
                    sampling_rate=STEAD_RATE,
                    starttime=start,
                    p_sample=row["p_arrival_sample"],
                    s_sample=row["s_arrival_sample"],
                    notes=[f"STEAD trace {name}"]
                    + ([f"category {row['trace_category']}"] if _text(row, "trace_category", "") else []),
                )
            except TraceDataError as exc:
                raise TraceDataError(f"STEAD trace {name}: {exc}") from None
            records.append(resample_record(rec, sampling_rate) if sampling_rate is not None else rec)
            if (i + 1) % 256 == 0 or i + 1 == len(rows):
                report("traces", "read STEAD", i + 1, len(rows))
    return records


STEAD_FRAME_CHANNELS = ("Z_channel", "N_channel", "E_channel")


def read_stead_frame(
    frame: Any,
    *,
    picks: bool = True,
    sampling_rate: float | None = 100.0,
    trusted: bool = False,
) -> list[Record]:
    """Records from the CDiffSD subsample's layout: a pandas DataFrame (or a pickle of one, e.g. the Zenodo
    ``df_train.csv`` / ``df_noise_train.csv``, which are pickles) with a column ``trace_name``, the columns
    ``Z_channel``, ``N_channel``, ``E_channel`` each holding one trace's samples (all of one length) and, with
    ``picks`` (default; False for noise frames), ``p_arrival_sample`` and ``s_arrival_sample``. Optional:
    ``network_code``, ``receiver_code``, ``receiver_type``, ``trace_start_time``. At STEAD's 100 Hz, resampled
    to ``sampling_rate``. A pickle runs code when loaded: a path is read only with ``trusted=True``. Missing
    columns, ragged traces and NaN/Inf samples are one-line :class:`TraceDataError` naming the trace."""
    import pandas as pd

    where = "STEAD frame"
    if not isinstance(frame, pd.DataFrame):
        path = Path(frame)
        where = f"STEAD frame {path}"
        if not path.is_file():
            raise FileNotFoundError(f"{where} does not exist")
        if not trusted:
            raise TraceDataError(f"{where} is a pickle, which runs code when loaded; pass trusted=True if it is yours")
        try:
            frame = pd.read_pickle(path)
        except Exception as exc:  # noqa: BLE001 - unpickling raises anything
            raise TraceDataError(f"{where} is not a pandas pickle ({str(exc).splitlines()[0]})") from None
        if not isinstance(frame, pd.DataFrame):
            raise TraceDataError(f"{where} holds a {type(frame).__name__}, not a DataFrame")
    required = ("trace_name", *STEAD_FRAME_CHANNELS) + (("p_arrival_sample", "s_arrival_sample") if picks else ())
    absent = [c for c in required if c not in frame.columns]
    if absent:
        raise TraceDataError(f"{where} lacks column(s) {', '.join(absent)} (needs {', '.join(required)})")
    if frame.empty:
        raise TraceDataError(f"{where} holds no traces")
    names = frame["trace_name"].astype(str).to_numpy()
    lengths = np.array([[np.size(v) for v in frame[c]] for c in STEAD_FRAME_CHANNELS])  # metadata only
    bad = np.flatnonzero((lengths != lengths[0, 0]).any(axis=0))
    if bad.size:
        i = int(bad[0])
        raise TraceDataError(
            f"{where}: trace {names[i]} has {', '.join(str(n) for n in lengths[:, i])} samples (Z, N, E) but "
            f"trace {names[0]} has {lengths[0, 0]}; every trace must hold one length"
        )
    data = np.stack([np.stack(frame[c].to_numpy()).astype(np.float32) for c in STEAD_FRAME_CHANNELS], axis=1)
    rows = frame.to_dict("records")
    p = pd.to_numeric(frame["p_arrival_sample"], errors="coerce").to_numpy() if picks else np.full(len(frame), np.nan)
    s = pd.to_numeric(frame["s_arrival_sample"], errors="coerce").to_numpy() if picks else np.full(len(frame), np.nan)
    records = []
    for i, row in enumerate(rows):  # Record objects (metadata); the samples were stacked at once above
        net = _text(row, "network_code", "XX")
        sta = _text(row, "receiver_code", names[i].split(".")[0][:5] or "STEAD")
        try:
            rec = Record(
                id=f"{net}.{sta}..{_text(row, 'receiver_type', 'HH')[:2]}?",
                data=data[i],
                sampling_rate=STEAD_RATE,
                starttime=_text(row, "trace_start_time", "1970-01-01T00:00:00"),
                p_sample=p[i],
                s_sample=s[i],
                notes=[f"STEAD trace {names[i]}"],
            )
        except TraceDataError as exc:
            raise TraceDataError(f"STEAD trace {names[i]}: {exc}") from None
        records.append(resample_record(rec, sampling_rate) if sampling_rate is not None else rec)
    return records


# ------------------------------------------------------------------------------------------------ MiniSEED
def _codes(record: Record) -> tuple[str, str, str]:
    parts = record.id.split(".")
    if len(parts) != 4:
        raise TraceDataError(f"record {record.id}: id must be NET.STA.LOC.CH? to write MiniSEED")
    net, sta, loc, _ = parts
    for what, value, most in (("network", net, 2), ("station", sta, 5), ("location", loc, 2)):
        if len(value) > most:
            raise TraceDataError(f"record {record.id}: {what} code {value!r} is longer than MiniSEED's {most}")
    for cha in record.channels or ():
        if len(cha) > 3:
            raise TraceDataError(f"record {record.id}: channel code {cha!r} is longer than MiniSEED's 3")
    return net, sta, loc


def write_mseed(
    records: Iterable[Record],
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    roots: Iterable[str | os.PathLike] | None = None,
    protected: Iterable = (),
) -> Path:
    """Write ``records`` (a list or an iterator, e.g. :func:`~seiscore.data.traces.iter_store_records`, written one
    at a time) as one MiniSEED file at ``path`` (float32 samples, record length 4096, one trace per component with
    the record's channel codes, start time and rate); return the resolved path.

    Written under a temporary sibling and renamed when whole, marked as the product's; an existing file is
    replaced only with ``overwrite`` and only when the product wrote it; ``roots``/``protected`` as in
    :func:`seiscore.core.safety.check_write_target`. :func:`read_waveforms` reads it back to the same samples,
    ids, channels, start times and rate (picks and notes are not stored in MiniSEED)."""
    import obspy

    from seiscore.core.safety import check_replaceable, check_write_target, replace_file
    from seiscore.io.os_errors import removed_on_failure, writing

    dest = check_write_target(path, what="MiniSEED file", roots=roots, protected=protected)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists; pass overwrite=True (--overwrite) to replace it")
    tmp = check_replaceable(dest.with_name(f".{dest.name}.seiscore-tmp"), "temporary MiniSEED file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with removed_on_failure(tmp), writing(tmp):
        tmp.unlink(missing_ok=True)
        with open(tmp, "wb") as fh:
            for r in records:  # one record at a time: an iterator (iter_store_records) is never held whole
                if not isinstance(r, Record):
                    raise TraceDataError(f"records must be seiscore.data.traces.Record, got {type(r).__name__}")
                net, sta, loc = _codes(r)
                start = obspy.UTCDateTime(r.starttime)
                stream = obspy.Stream()
                for i, cha in enumerate(r.channels or ()):
                    header = {"network": net, "station": sta, "location": loc, "channel": cha,
                              "sampling_rate": r.sampling_rate, "starttime": start}  # fmt: skip
                    stream += obspy.Trace(np.ascontiguousarray(r.data[i], dtype=np.float32), header=header)
                stream.write(fh, format="MSEED", encoding="FLOAT32", reclen=4096)
                count += 1
            if not count:
                raise TraceDataError("no records to write")
            fh.flush()
            os.fsync(fh.fileno())
    return replace_file(tmp, dest)


# ------------------------------------------------------------------------------------------------- ingest
def load_records(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    csv: str | os.PathLike | None = None,
    sampling_rate: float | None = 100.0,
    missing: str = "error",
) -> list[Record]:
    """Records from ``source``: a STEAD pair when ``csv`` is given (``source`` the HDF5 file), else waveform
    files, globs or folders (:func:`read_waveforms`)."""
    if csv is not None:
        if not isinstance(source, (str, os.PathLike)):
            raise TraceDataError("a STEAD source is one HDF5 file (with its CSV)")
        return read_stead(source, csv, sampling_rate=sampling_rate)
    return read_waveforms(source, sampling_rate=sampling_rate, missing=missing)


def ingest_traces(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    store: str | os.PathLike,
    *,
    csv: str | os.PathLike | None = None,
    length: int = DEFAULT_LENGTH,
    hop: int = DEFAULT_HOP,
    sampling_rate: float = 100.0,
    missing: str = "error",
    min_length: int | None = None,
    overwrite: bool = False,
    roots: Iterable[str | os.PathLike] | None = None,
) -> Path:
    """Read ``source`` (:func:`load_records`), resample to ``sampling_rate``, cut into windows
    (:func:`~seiscore.data.traces.records_to_windows`) and write a complete trace store at ``store``; the store's
    ``source`` attribute names what was read. Every problem is a one-line error before anything is written."""
    from seiscore.core.safety import check_write_target

    check_write_target(store, what="trace store", roots=roots, replace=True)  # fail before reading
    records = load_records(source, csv=csv, sampling_rate=sampling_rate, missing=missing)
    windows = records_to_windows(records, length, hop, min_length=min_length)
    names = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    attrs = {"source": ", ".join(os.fspath(s) for s in names), "source_format": "stead" if csv else "obspy"}
    if csv is not None:
        attrs["source_csv"] = os.fspath(csv)
    return write_trace_store(store, windows, attrs=attrs, overwrite=overwrite, roots=roots)
