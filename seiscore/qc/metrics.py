"""Quality metrics of one denoising run, as a JSON-serialisable dict.

Reads only sampled slices (and a bounded set of traces for the spectra) from possibly
dask-backed arrays, batch by batch.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import xarray as xr

from seiscore.metrics.brisque import MIN_SIZE, brisque, model_name, model_unavailable
from seiscore.metrics.leakage import leakage_per_slice
from seiscore.metrics.noref import iter_slice_batches, load_stacks, sample_indices, to_uint8
from seiscore.metrics.piqe import piqe
from seiscore.metrics.reference import psnr_per_slice, ssim_per_slice
from seiscore.metrics.spectra import amplitude_spectrum, band_edges, band_energies, frequency_axis
from seiscore.qc.config import QCConfig


def _check(name: str, da, like: xr.DataArray | None, slice_dim: str) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise ValueError(f"{name} must be an xarray.DataArray with named dims, got {type(da).__name__}")
    if da.ndim != 3:
        raise ValueError(f"{name} must be 3-D, got dims {da.dims}")
    if slice_dim not in da.dims:
        raise ValueError(f"{name} has no dimension {slice_dim!r} (dims {da.dims})")
    if da.dtype.kind != "f":
        raise ValueError(f"{name} must hold floats, got dtype {da.dtype}")
    if like is not None:
        if set(da.dims) != set(like.dims):
            raise ValueError(f"{name} dims {da.dims} differ from original dims {like.dims}")
        da = da.transpose(*like.dims)
        if da.shape != like.shape:
            raise ValueError(f"{name} shape {da.shape} differs from original shape {like.shape}")
    return da


def _clean(v):
    """Floats to JSON (NaN/Inf -> None), arrays to lists."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _summary(values: list[np.ndarray]) -> dict:
    a = np.concatenate(values) if values else np.array([])
    finite = a[np.isfinite(a)]
    return {"mean": float(finite.mean()) if finite.size else None, "per_slice": a}


# what a metric raises on data it cannot score (too small, degenerate, a model that does not load): the metric
# is then reported n/a with the message as its reason, and the run goes on
NOT_COMPUTABLE = (ValueError, ArithmeticError, RuntimeError, ImportError, OSError)
NO_FINITE_VALUE = "no scored slice gave a finite value (constant slices, or too uniform for the metric)"


def not_available(reason: str, n_slices: int, whens=("before", "after")) -> dict:
    """A metric that could not be computed: ``{when: {"mean": None, "per_slice": [None] * n}, "reason"}``."""
    return {**{w: {"mean": None, "per_slice": np.full(n_slices, np.nan)} for w in whens}, "reason": reason}


class _Scores:
    """Per-slice values of the metrics of one run, batch by batch; a metric that raises becomes n/a."""

    def __init__(self, n_slices: int):
        self.n = n_slices
        self.values: dict[tuple[str, str], list[np.ndarray]] = {}
        self.reasons: dict[str, str] = {}

    def add(self, name: str, when: str, fn, *args) -> None:
        if name in self.reasons:
            return
        try:
            self.values.setdefault((name, when), []).append(np.atleast_1d(np.asarray(fn(*args), dtype=np.float64)))
        except NOT_COMPUTABLE as exc:
            self.reasons[name] = f"{type(exc).__name__}: {exc}"

    def result(self, name: str, whens=("before", "after")) -> dict:
        """``{when: {"mean", "per_slice"}}``, plus ``"reason"`` when the metric (or one side of it) has no value."""
        if name in self.reasons:
            return not_available(self.reasons[name], self.n, whens)
        out: dict = {w: _summary(self.values.get((name, w), [])) for w in whens}
        flat = [w for w in whens if out[w]["mean"] is None]
        if flat:
            side = "" if len(flat) == len(whens) else f"{' and '.join(flat)}: "
            out["reason"] = f"{side}{NO_FINITE_VALUE}"
        return out


def noref_unavailable(rows: int, cols: int, dims: tuple[str, str]) -> dict[str, str]:
    """Why BRISQUE / PIQE cannot score slices of ``rows`` x ``cols`` here: {metric: reason}."""
    if min(rows, cols) < MIN_SIZE:
        reason = (
            f"time slices are {rows} x {cols} ({dims[0]} x {dims[1]}), smaller than the "
            f"{MIN_SIZE} x {MIN_SIZE} images BRISQUE and PIQE score"
        )
        return {"brisque": reason, "piqe": reason}
    model = model_unavailable()
    return {"brisque": model} if model else {}


def _score_noref(scores: _Scores, when: str, stack: np.ndarray) -> None:
    u8 = to_uint8(stack)
    scores.add("brisque", when, brisque, u8)
    scores.add("piqe", when, piqe, u8)


def _batches(arrays, slice_dim: str, idx: np.ndarray, cfg: QCConfig, progress: bool):
    batches = iter_slice_batches(arrays, slice_dim, idx, cfg.batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, total=math.ceil(len(idx) / cfg.batch_size), desc="QC metrics", unit="batch")
    return batches


def trace_sample(da: xr.DataArray, slice_dim: str, cfg: QCConfig) -> xr.DataArray:
    """A bounded, evenly spaced subset of traces: up to ``max_lines`` lines x ``max_traces_per_line``."""
    d0, d1 = [d for d in da.dims if d != slice_dim]
    sel = {d0: sample_indices(da.sizes[d0], cfg.max_lines), d1: sample_indices(da.sizes[d1], cfg.max_traces_per_line)}
    return da.isel(sel)


def spectra_traces(da: xr.DataArray, slice_dim: str, cfg: QCConfig) -> xr.DataArray:
    """The (lazy) traces the spectra are averaged over: :func:`trace_sample`, samples last."""
    return trace_sample(da, slice_dim, cfg).transpose(..., slice_dim)


def spectra(original: xr.DataArray, denoised: xr.DataArray, slice_dim: str, cfg: QCConfig, traces=None) -> dict:
    """Average amplitude spectra of original, denoised and removed traces, and band energies.

    ``traces``: the :func:`spectra_traces` of both arrays when already loaded (else they are read here)."""
    if traces is None:
        traces = [spectra_traces(a, slice_dim, cfg).values for a in (original, denoised)]
    o, d = (np.nan_to_num(np.asarray(t, dtype=np.float64)) for t in traces)
    coord = original[slice_dim]
    step = (
        float(np.median(np.diff(coord.values)))
        if original.sizes[slice_dim] > 1 and np.issubdtype(coord.dtype, np.number)
        else 1.0
    )
    unit = coord.attrs.get("units") if step > 0 else None
    freqs, label = frequency_axis(o.shape[-1], abs(step) if step else 1.0, unit)
    return {
        "frequency": freqs,
        "frequency_unit": label,
        "original": amplitude_spectrum(o),
        "denoised": amplitude_spectrum(d),
        "removed": amplitude_spectrum(o - d),
        "bands": band_energies(o, d, freqs, band_edges(float(freqs[-1]), cfg.n_bands)),
        "n_traces": int(np.prod(o.shape[:-1])),
    }


def quality_metrics(
    original: xr.DataArray,
    denoised: xr.DataArray,
    reference: xr.DataArray | None = None,
    *,
    slice_dim: str = "sample",
    max_slices: int | None = 64,
    config: QCConfig | None = None,
    progress: bool = False,
) -> dict:
    """Metrics of a denoising run, JSON-serialisable (NaN -> None).

    - ``brisque`` / ``piqe``: ``{"before"|"after": {"mean", "per_slice"}}`` over the sampled
      slices along ``slice_dim`` (each slice scaled to uint8 by its own range; lower is better);
      ``brisque_model`` names the SVR model.
    - ``leakage``: ``{"mean", "per_slice"}``, mean local similarity of denoised and removed noise
      per slice (0 = nothing of the signal removed).
    - ``band_energy``: removed-noise energy per frequency band (and fraction of the original);
      ``spectra``: average amplitude spectra (original, denoised, removed).
    - with ``reference``: ``psnr``, ``ssim`` (paper convention over the sampled slices: each array
      min-max scaled to [0, 255] by its whole range, found chunk by chunk) and ``snr``
      (dB, ``10 log10(|ref|^2 / |ref - x|^2)``), each ``{"before", "after"}``.
    - ``slices``: the indices scored, ``slice_values`` their coordinate values.

    A metric that cannot be computed on these data (slices smaller than 16 x 16 for BRISQUE / PIQE
    or 11 x 11 for SSIM, a missing BRISQUE model, only constant slices) is n/a, not an error: its
    means and per-slice values are None and ``"reason"`` says why (:func:`not_available`).

    Only the sampled slices and a bounded set of traces are loaded (batch by batch).
    """
    cfg = config or QCConfig()
    original = _check("original", original, None, slice_dim)
    denoised = _check("denoised", denoised, original, slice_dim)
    arrays = [original, denoised]
    if reference is not None:
        arrays.append(_check("reference", reference, original, slice_dim))
    idx = sample_indices(original.sizes[slice_dim], max_slices)

    scores = _Scores(len(idx))
    scores.reasons.update(noref_unavailable(*_slice_shape(original, slice_dim)))
    ref_stacks: list[list[np.ndarray]] = [[], [], []]
    traces = None
    if len(idx) <= cfg.batch_size:  # one load: the slices and the spectra's traces share their chunk reads
        traces_lazy = [spectra_traces(a, slice_dim, cfg) for a in (original, denoised)]
        loaded, stacks, traces = load_stacks(arrays, slice_dim, idx, extra=traces_lazy)
        batches = [(loaded, stacks)]
    else:
        batches = _batches(arrays, slice_dim, idx, cfg, progress)
    for _, stacks in batches:
        o, d = stacks[0], stacks[1]
        _score_noref(scores, "before", o)
        _score_noref(scores, "after", d)
        scores.add("leakage", "all", _leakage_means, d, o - d, cfg)
        if reference is not None:
            for k in range(3):
                ref_stacks[k].append(stacks[k].astype(np.float32))

    spec = spectra(original, denoised, slice_dim, cfg, traces)
    out = {
        "slice_dim": slice_dim,
        "n_slices_total": int(original.sizes[slice_dim]),
        "slices": idx,
        "slice_values": original[slice_dim].values[idx] if slice_dim in original.coords else idx,
        "brisque_model": model_name(),
        "brisque": scores.result("brisque"),
        "piqe": scores.result("piqe"),
        "leakage": {**_leakage(scores), "radius": cfg.leakage_radius, "niter": cfg.leakage_niter},
        "band_energy": spec.pop("bands"),
        "spectra": spec,
    }
    if reference is not None:
        o, d, r = (np.concatenate(s) for s in ref_stacks)
        ranges = [(float(a.min()), float(a.max())) for a in arrays]  # streamed over chunks when dask-backed
        out.update(reference_metrics(r, o, d, ranges=(ranges[2], ranges[0], ranges[1])))
    return _clean(out)


def _slice_shape(da: xr.DataArray, slice_dim: str) -> tuple[int, int, tuple[str, str]]:
    d0, d1 = [d for d in da.dims if d != slice_dim]
    return da.sizes[d0], da.sizes[d1], (d0, d1)


def _leakage_means(denoised: np.ndarray, removed: np.ndarray, cfg: QCConfig) -> np.ndarray:
    return leakage_per_slice(denoised, removed, radius=cfg.leakage_radius, niter=cfg.leakage_niter)[0]


def _leakage(scores: _Scores) -> dict:
    """``{"mean", "per_slice"}`` of the leakage (and ``"reason"`` when it has no value)."""
    out = scores.result("leakage", whens=("all",))
    return {**out["all"], **({"reason": out["reason"]} if "reason" in out else {})}


def _snr_per_slice(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    err = np.sum((ref.astype(np.float64) - est) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.sum(ref.astype(np.float64) ** 2, axis=(1, 2)) / err)


def reference_metrics(ref: np.ndarray, before: np.ndarray, after: np.ndarray, ranges=(None, None, None)) -> dict:
    """PSNR / SSIM / SNR of stacks ``(n, rows, cols)`` against a reference, before and after.

    ``ranges``: the whole arrays' ``(min, max)`` of reference, before and after (default: the stacks')."""
    scores = _Scores(len(ref))
    for name, fn in (("psnr", psnr_per_slice), ("ssim", ssim_per_slice), ("snr", _snr_per_slice)):
        if fn is _snr_per_slice:
            scores.add(name, "before", fn, ref, before)
            scores.add(name, "after", fn, ref, after)
        else:
            scores.add(
                name, "before", partial(fn, axis=0, reference_range=ranges[0], estimate_range=ranges[1]), ref, before
            )
            scores.add(
                name, "after", partial(fn, axis=0, reference_range=ranges[0], estimate_range=ranges[2]), ref, after
            )
    return {name: scores.result(name) for name in ("psnr", "ssim", "snr")}


def volume_metrics(
    data: xr.DataArray,
    *,
    slice_dim: str = "sample",
    max_slices: int | None = 64,
    config: QCConfig | None = None,
    progress: bool = False,
) -> dict:
    """No-reference metrics of a single volume (no original to compare with): BRISQUE/PIQE ``after`` and spectra."""
    cfg = config or QCConfig()
    data = _check("data", data, None, slice_dim)
    idx = sample_indices(data.sizes[slice_dim], max_slices)
    scores = _Scores(len(idx))
    scores.reasons.update(noref_unavailable(*_slice_shape(data, slice_dim)))
    batches = _batches([data], slice_dim, idx, cfg, progress)
    for _, (stack,) in batches:
        _score_noref(scores, "after", stack)
    spec = spectra(data, data, slice_dim, cfg)
    spec.pop("bands")
    spec["removed"] = spec["original"] = None
    return _clean(
        {
            "slice_dim": slice_dim,
            "n_slices_total": int(data.sizes[slice_dim]),
            "slices": idx,
            "slice_values": data[slice_dim].values[idx] if slice_dim in data.coords else idx,
            "brisque_model": model_name(),
            "brisque": scores.result("brisque", whens=("after",)),
            "piqe": scores.result("piqe", whens=("after",)),
            "spectra": spec,
        }
    )
