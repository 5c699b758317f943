"""SEG-Y fuzzing: a few hundred header mutations of a small segyio-written file, each ingested.

Every mutated file must either ingest to exactly what segyio reads from it (every trace once, on the
bin its inline / crossline numbers name, same samples), or be refused with a one-line error the
``seis`` CLI prints as such (naming the file) and nothing left behind: never another exception type
(a traceback), never a hang, never a large allocation (a corrupted sample count must not allocate
gigabytes). Mutations are drawn from a seeded RNG, so a failure reproduces with its case number.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import segyio
import xarray as xr

from seiscore.io import ingest
from seiscore.io.store import temp_path

N_IL, N_XL, N_SAMPLES = 6, 5, 50
N_CASES = 250
TIME_BOUND_S = 300  # all cases (a hang fails the test here); ~35 s of CPU
USER_ERRORS = (ValueError, FileNotFoundError, NotImplementedError, FileExistsError)  # one line in `seis`
MEMORY_BOUND = 200 * 2**20

# (1-based byte, size) of binary-header fields: interval, sample count, format, sorting, ensemble fold,
# measurement system, SEG-Y revision, fixed-length flag, extended textual header count, rev-2 sample count
BINARY_FIELDS = [
    (3217, 2),
    (3221, 2),
    (3225, 2),
    (3229, 2),
    (3227, 2),
    (3255, 2),
    (3501, 1),
    (3503, 2),
    (3505, 2),
    (3269, 4),
]
# trace-header fields: inline / crossline (189 / 193 and 9 / 21), offset, sample count, interval,
# coordinate scalar, CDP X / Y
TRACE_FIELDS = [(189, 4), (193, 4), (9, 4), (21, 4), (37, 4), (115, 2), (117, 2), (71, 2), (181, 4), (185, 4)]
INTERESTING = [
    0,
    1,
    -1,
    2,
    3,
    4,
    5,
    6,
    8,
    9,
    10,
    11,
    12,
    16,
    49,
    50,
    51,
    100,
    127,
    128,
    255,
    256,
    1000,
    4000,
    32767,
    -32768,
    65535,
    2**31 - 1,
    -(2**31),
]


BASES = [(1, "big"), (5, "big"), (5, "little")]  # (sample format, byte order) of the files mutated


def _write_base(path: Path, fmt: int, endian: str) -> Path:
    """A 6 x 5 inline-sorted post-stack file, 50 samples at 4 ms, with segyio (format 1 IBM or 5 IEEE)."""
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount, spec.sorting = fmt, np.arange(N_SAMPLES) * 4.0, N_IL * N_XL, 2
    spec.endian = endian
    data = np.random.default_rng(fmt).standard_normal((N_IL * N_XL, N_SAMPLES)).astype(np.float32)
    with segyio.create(str(path), spec) as f:
        for t in range(N_IL * N_XL):
            il, xl = 100 + t // N_XL, 20 + 2 * (t % N_XL)
            f.header[t] = {
                segyio.su.iline: il,
                segyio.su.xline: xl,
                segyio.su.fldr: il,
                segyio.su.cdp: xl,
                segyio.su.ns: N_SAMPLES,
                segyio.su.dt: 4000,
                segyio.su.scalco: -100,
                segyio.su.cdpx: 50_000 + 2500 * xl,
                segyio.su.cdpy: 70_000 + 2500 * il,
            }
            f.trace[t] = data[t]
        f.bin.update(hns=N_SAMPLES, hdt=4000, format=fmt, tsort=2)
    return path


def _put(buf: bytearray, pos: int, size: int, value: int, endian: str) -> None:
    """Write ``value`` at 0-based ``pos`` (wrapped to the field's width)."""
    if pos + size <= len(buf):
        buf[pos : pos + size] = (int(value) % 2 ** (8 * size)).to_bytes(size, endian)


def _value(rng: np.random.Generator, size: int) -> int:
    return (
        int(rng.choice(INTERESTING))
        if rng.random() < 0.7
        else int(rng.integers(-(2 ** (8 * size - 1)), 2 ** (8 * size - 1)))
    )


def _mutate(base: bytes, endian: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """One mutation of ``base`` and a description of it."""
    buf = bytearray(base)
    trace_size = 240 + 4 * N_SAMPLES
    kind = rng.choice(["binary", "binary", "trace", "trace", "trace", "truncate", "garbage", "append", "order"])
    if kind == "binary":
        byte, size = BINARY_FIELDS[rng.integers(len(BINARY_FIELDS))]
        value = _value(rng, size)
        _put(buf, byte - 1, size, value, endian)
        return bytes(buf), f"binary byte {byte} = {value}"
    if kind == "trace":
        byte, size = TRACE_FIELDS[rng.integers(len(TRACE_FIELDS))]
        value = _value(rng, size)
        which = rng.choice(["one", "all", "last"])
        traces = {"one": [int(rng.integers(N_IL * N_XL))], "all": range(N_IL * N_XL), "last": [N_IL * N_XL - 1]}[which]
        for t in traces:
            _put(buf, 3600 + t * trace_size + byte - 1, size, value, endian)
        return bytes(buf), f"trace byte {byte} = {value} on {which} trace(s)"
    if kind == "order" and len(base) == 3600 + N_IL * N_XL * trace_size:  # whole traces reordered
        rows = np.frombuffer(base, np.uint8, offset=3600).reshape(N_IL * N_XL, trace_size)
        how = rng.choice(["crossline", "shuffle", "swap", "duplicate"])
        order = {
            "crossline": np.arange(N_IL * N_XL).reshape(N_IL, N_XL).T.ravel(),
            "shuffle": rng.permutation(N_IL * N_XL),
            "swap": np.r_[1, 0, 2 : N_IL * N_XL],
            "duplicate": np.r_[0 : N_IL * N_XL - 1, 0],
        }[how]
        return base[:3600] + rows[order].tobytes(), f"traces reordered ({how})"
    if kind == "truncate":
        at_trace = 3600 + trace_size * int(rng.integers(N_IL * N_XL))  # a whole number of traces: a valid file
        cut = int(rng.integers(len(buf) + 1)) if rng.random() < 0.7 else at_trace
        return bytes(buf[:cut]), f"truncated to {cut} bytes"
    if kind == "garbage":
        n = int(rng.integers(1, 65))
        span = 3600 + 2 * trace_size if rng.random() < 0.7 else len(buf)  # mostly the file and first headers
        where = rng.integers(0, max(1, min(len(buf), span)), size=n)
        where = where[where < len(buf)]
        for pos in where:
            buf[pos] = int(rng.integers(256))
        return bytes(buf), f"{n} garbage bytes at {sorted(where.tolist())[:5]}..."
    n = trace_size if rng.random() < 0.5 else int(rng.integers(1, 600))
    return bytes(buf) + rng.integers(0, 256, n, dtype=np.uint8).tobytes(), f"{n} garbage bytes appended"


def test_zero_sample_count_is_named(tmp_path):
    """Binary sample count 0: segyio reads 240-byte traces without samples; ingest says what is wrong."""
    data = bytearray(_write_base(tmp_path / "base.sgy", 5, "big").read_bytes())
    _put(data, 3220, 2, 0, "big")
    (tmp_path / "zero.sgy").write_bytes(bytes(data))
    with pytest.raises(
        ValueError,
        match=r"zero.sgy: the binary header gives 0 samples per trace \(byte 3221.*"
        r"the first trace header says 50 \(byte 115\)",
    ):
        ingest(tmp_path / "zero.sgy", tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists() and not temp_path(tmp_path / "s.zarr").exists()


def _ibm_words(src: Path, endian: str, n_ext: int, n_traces: int, n_samples: int) -> np.ndarray:
    """The raw IBM sample words (n_traces, n_samples) of a format-1 file, as native uint32."""
    words = np.fromfile(src, dtype=">u4" if endian == "big" else "<u4", offset=3600 + 3200 * n_ext)
    return words.reshape(n_traces, 60 + n_samples)[:, 60:].astype(np.uint32)


def _expected_samples(src: Path, traces: np.ndarray, fmt: int, endian: str, n_ext: int) -> np.ndarray:
    """segyio's samples, except for IBM words segyio's bit-twiddling conversion does not decode exactly (not
    normalised, or beyond float32's normal range, e.g. IEEE bits read as IBM): there the correctly rounded
    float32 of the IBM value, computed here in float64 (exact for every IBM single)."""
    if fmt != 1:
        return traces
    w = _ibm_words(src, endian, n_ext, *traces.shape)
    fraction, exponent = (w & 0xFFFFFF).astype(np.float64), ((w >> 24) & 0x7F).astype(np.int64)
    exact = np.where(w >> 31, -1.0, 1.0) * np.ldexp(fraction, 4 * (exponent - 64) - 24)
    with np.errstate(over="ignore"):
        rounded = exact.astype(np.float32)
    outside = ((fraction > 0) & (fraction < 2**20)) | (
        (exact != 0) & ((np.abs(exact) < 2.0**-126) | (np.abs(exact) >= 2.0**128))
    )
    return np.where(outside, rounded, traces)


def _check_same_as_segyio(src: Path, store: Path, il_byte: int, xl_byte: int) -> None:
    """The store holds every trace segyio reads, once, on the bin of its header numbers, with its samples."""
    ds = xr.open_zarr(str(store))
    with segyio.open(str(src), "r", ignore_geometry=True, endian=ds.attrs["endian"]) as f:
        traces = np.asarray(f.trace.raw[:]).astype(np.float32)
        il, xl = f.attributes(il_byte)[:], f.attributes(xl_byte)[:]
        samples = np.asarray(f.samples, dtype=np.float64)
        fmt, n_ext = int(f.bin[segyio.BinField.Format]), int(f.ext_headers)
    traces = _expected_samples(src, traces, fmt, ds.attrs["endian"], n_ext)
    index = ds["trace_index"].values
    live = index >= 0
    assert np.array_equal(np.sort(index[live]), np.arange(len(traces)))
    assert np.array_equal(il[index[live]], np.broadcast_to(ds["inline"].values[:, None], index.shape)[live])
    assert np.array_equal(xl[index[live]], np.broadcast_to(ds["crossline"].values[None, :], index.shape)[live])
    amp = ds["amplitude"].values
    assert amp.shape == (*index.shape, traces.shape[1]) and np.array_equal(ds["sample"].values, samples)
    np.testing.assert_array_equal(amp[live], traces[index[live]])
    assert np.all(amp[~live] == 0)


def _one_case(src: Path, store: Path, il_byte: int, xl_byte: int) -> tuple[str, str | None]:
    """Ingest one mutated file: ("ingested" | "refused", None) or (outcome, what is wrong)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. inexact samples of integer formats
            ingest(src, store, il_byte=il_byte, xl_byte=xl_byte)
    except USER_ERRORS as exc:
        msg = str(exc)
        if "\n" in msg or src.name not in msg:
            return "refused", f"{type(exc).__name__} not one line naming the file: {msg!r}"
        if store.exists() or temp_path(store).exists():
            return "refused", f"store left behind after {type(exc).__name__}: {msg}"
        return "refused", None
    except Exception as exc:  # noqa: BLE001 - the point of the test
        return "traceback", f"{type(exc).__name__} (a traceback for the user): {exc}"
    try:
        _check_same_as_segyio(src, store, il_byte, xl_byte)
    except Exception as exc:  # noqa: BLE001
        return "ingested", f"not as segyio reads it: {type(exc).__name__}: {str(exc)[:300]}"
    return "ingested", None


def run_cases(directory: Path, n_cases: int = N_CASES, seed: int = 20261201) -> dict:
    """Run the mutation cases in ``directory``; returns outcomes, problems, slowest case and peak-RSS growth.

    Called in a fresh process by the test, so that the process's peak RSS measures these cases only."""
    bases = [_write_base(directory / f"base_{fmt}_{endian}.sgy", fmt, endian).read_bytes() for fmt, endian in BASES]
    rng = np.random.default_rng(seed)
    outcomes = {"ingested": 0, "refused": 0, "traceback": 0}
    problems, slowest, rss0 = [], 0.0, None
    for case in range(n_cases):
        fmt, endian = BASES[case % len(BASES)]
        data, what = bases[case % len(BASES)], []
        for _ in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):  # sometimes 2 or 3 at once
            data, one = _mutate(data, endian, rng)
            what.append(one)
        il_byte, xl_byte = (189, 193) if rng.random() < 0.8 else (9, 21)
        src, store = directory / f"case{case}.sgy", directory / f"case{case}.zarr"
        src.write_bytes(data)
        t0 = time.perf_counter()
        outcome, problem = _one_case(src, store, il_byte, xl_byte)
        slowest = max(slowest, time.perf_counter() - t0) if case else 0.0  # case 0 compiles the kernels
        outcomes[outcome] += 1
        if problem:
            problems.append(
                f"case {case} (format {fmt} {endian}-endian, {' + '.join(what)}, bytes {il_byte}/{xl_byte}): {problem}"
            )
        if rss0 is None:  # after the first case: imports done, kernels compiled
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        src.unlink()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    return {"outcomes": outcomes, "problems": problems, "slowest_s": slowest, "rss_growth": rss_growth}


@pytest.mark.slow
def test_header_mutations_ingest_like_segyio_or_refuse_in_one_line(tmp_path):
    """A few hundred mutations in a fresh process (its peak RSS is theirs), with an overall time bound."""
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import test_segy_fuzz as t; "
        "print(json.dumps(t.run_cases(Path(sys.argv[2]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=TIME_BOUND_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["problems"] == [], "\n".join(result["problems"][:10])
    assert result["rss_growth"] < MEMORY_BOUND, f"peak RSS grew by {result['rss_growth'] / 2**20:.0f} MiB"
    assert result["slowest_s"] < 30, f"one case took {result['slowest_s']:.1f} s"
    counts = result["outcomes"]  # the mutations exercise both outcomes
    assert counts["ingested"] > N_CASES // 10 and counts["refused"] > N_CASES // 10, counts
