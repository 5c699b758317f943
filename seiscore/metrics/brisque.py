"""BRISQUE: Blind/Referenceless Image Spatial Quality Evaluator (Mittal, Moorthy & Bovik 2012).

Features (36 per image, 18 at full and 18 at half resolution), computed for a whole
stack of images at once:

1. MSCN coefficients ``m`` (:mod:`seiscore.metrics.mscn`, grey levels / 255, C = 1/255).
2. Shape and variance of ``m``: an asymmetric generalised Gaussian (AGGD) fit gives the
   shape ``alpha`` and ``(sigma_l^2 + sigma_r^2) / 2``; for a symmetric distribution this is
   the GGD fit of the paper (:func:`ggd_fit`).
3. Pairwise products of neighbours, ``m(i, j) m(i + di, j + dj)`` for the horizontal (0, 1),
   vertical (1, 0), main-diagonal (1, 1) and anti-diagonal (-1, 1) shifts (neighbours
   outside the image count as 0): AGGD fit -> ``alpha``, mean
   ``(sigma_r - sigma_l) Gamma(2/alpha) / Gamma(1/alpha) sqrt(Gamma(1/alpha) / Gamma(3/alpha))``,
   ``sigma_l^2``, ``sigma_r^2``.
4. The same on the image downscaled by 2 with bicubic interpolation (OpenCV ``INTER_CUBIC``).

Moment matching for the shape: with ``rho(a) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))``
(increasing in ``a``), the AGGD shape is the grid value ``a`` in 0.2, 0.201, ... < 10 whose
``rho(a)`` is nearest to ``r_hat (g^3 + 1)(g + 1) / (g^2 + 1)^2`` with ``g = sigma_l / sigma_r``
and ``r_hat = E|x|^2 / E[x^2]``.

This follows the reference C++ implementation that OpenCV-contrib's ``quality`` module
ports (replicated borders, zero-filled shifts, cubic resize), so the features agree with
``cv2.quality.QualityBRISQUE_computeFeatures`` (tests state the tolerance).

Score: features are scaled to [-1, 1] with the model's per-feature ranges and passed to an
epsilon-SVR (RBF kernel). The model is the LIVE-trained LIBSVM model shipped as data files by
the ``brisque`` PyPI package (``brisque/models/svm.txt`` and ``normalize.pickle``), loaded with
``libsvm-official``; only these files are used (that package's feature code fails on NumPy 2).
Lower scores mean better quality; absolute values depend on the model (MATLAB's differ).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import pickle
from pathlib import Path

import numpy as np
from scipy.special import gamma as _gamma

from seiscore.metrics.mscn import mscn

N_FEATURES = 36
MIN_SIZE = 16  # smallest image side BRISQUE and PIQE (16 x 16 blocks) score
PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
CUBIC_A = -0.75  # OpenCV's bicubic kernel parameter


def _shape_grid() -> np.ndarray:
    """Shape grid 0.2, 0.201, ..., 9.999 (as in the reference implementations)."""
    return np.round(0.2 + 0.001 * np.arange(9800), 3)


_GRID = _shape_grid()
_RHO = _gamma(2 / _GRID) ** 2 / (_gamma(1 / _GRID) * _gamma(3 / _GRID))


def _shape_from_ratio(target: np.ndarray) -> np.ndarray:
    """Grid shape whose ``rho`` is nearest to ``target`` (elementwise; NaN stays NaN)."""
    target = np.asarray(target, dtype=np.float64)
    i = np.clip(np.searchsorted(_RHO, np.nan_to_num(target)), 1, len(_RHO) - 1)
    below = np.abs(_RHO[i - 1] - target) < np.abs(_RHO[i] - target)
    out = _GRID[np.where(below, i - 1, i)]
    return np.where(np.isfinite(target), out, np.nan)


def ggd_fit(x: np.ndarray, axis=-1) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Gaussian fit by moment matching: returns (shape alpha, variance sigma^2)."""
    x = np.asarray(x, dtype=np.float64)
    var = np.mean(x * x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.mean(np.abs(x), axis=axis) ** 2 / var
    return _shape_from_ratio(ratio), var


def aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric GGD fit over the last axis: returns (alpha, sigma_l, sigma_r).

    Zeros count in ``E|x|`` and ``E[x^2]`` but in neither side's variance.
    """
    x = np.asarray(x, dtype=np.float64)
    neg, pos = np.minimum(x, 0.0), np.maximum(x, 0.0)
    neg_sq, pos_sq = np.sum(neg * neg, axis=-1), np.sum(pos * pos, axis=-1)
    n = x.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma_l = np.sqrt(neg_sq / np.count_nonzero(x < 0, axis=-1))
        sigma_r = np.sqrt(pos_sq / np.count_nonzero(x > 0, axis=-1))
        g = sigma_l / sigma_r
        r_hat = (np.sum(np.abs(x), axis=-1) / n) ** 2 / ((neg_sq + pos_sq) / n)
        r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    return _shape_from_ratio(r_norm), sigma_l, sigma_r


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """Keys cubic weights (a = -0.75) for taps at offsets -1, 0, 1, 2 of fractional positions ``t``."""
    a = CUBIC_A
    d = np.stack([1 + t, t, 1 - t, 2 - t], axis=-1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far).astype(np.float32).astype(np.float64)


def _resize_axis(stack: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    n_in = stack.shape[axis]
    scale = np.float64(n_in) / n_out
    fx = ((np.arange(n_out) + 0.5) * scale - 0.5).astype(np.float32)
    ix = np.floor(fx).astype(np.int64)
    w = _cubic_weights((fx - ix).astype(np.float64))
    idx = np.clip(ix[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)  # replicated borders
    taps = np.take(stack, idx, axis=axis)  # axis -> (n_out, 4)
    shape = [1] * taps.ndim
    shape[axis], shape[axis + 1] = n_out, 4
    return np.sum(taps * w.reshape(shape), axis=axis + 1)


def resize_half(stack: np.ndarray) -> np.ndarray:
    """Bicubic downscale of a stack ``(n, rows, cols)`` to ``(rows // 2, cols // 2)`` (OpenCV INTER_CUBIC)."""
    rows, cols = stack.shape[-2:]
    out = _resize_axis(stack, stack.ndim - 2, rows // 2)
    return _resize_axis(out, stack.ndim - 1, cols // 2)


def _pair_product(m: np.ndarray, di: int, dj: int) -> np.ndarray:
    """``m(i, j) * m(i + di, j + dj)`` with 0 outside the image."""
    rows, cols = m.shape[-2:]
    out = np.zeros_like(m)
    r0, r1 = max(0, -di), rows - max(0, di)
    c0, c1 = max(0, -dj), cols - max(0, dj)
    out[:, r0:r1, c0:c1] = m[:, r0:r1, c0:c1] * m[:, r0 + di : r1 + di, c0 + dj : c1 + dj]
    return out


def _scale_features(img: np.ndarray) -> np.ndarray:
    """The 18 features of one scale for a stack in [0, 1]; shape (n, 18)."""
    m = mscn(img)
    n = m.shape[0]
    alpha, sl, sr = aggd_fit(m.reshape(n, -1))
    feats = [alpha, (sl**2 + sr**2) / 2]
    for di, dj in PAIR_SHIFTS:
        alpha, sl, sr = aggd_fit(_pair_product(m, di, dj).reshape(n, -1))
        with np.errstate(invalid="ignore", divide="ignore"):
            const = np.sqrt(_gamma(1 / alpha) / _gamma(3 / alpha))
            mean = (sr - sl) * (_gamma(2 / alpha) / _gamma(1 / alpha)) * const
        feats += [alpha, mean, sl**2, sr**2]
    return np.stack(feats, axis=1)


def _as_stack(images, name: str = "images") -> np.ndarray:
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be a 2-D image or a stack (n, rows, cols), got shape {a.shape}")
    if a.dtype.kind not in "uif":
        raise ValueError(f"{name} must hold grey levels (uint8 or float in [0, 255]), got dtype {a.dtype}")
    if min(a.shape[1:]) < MIN_SIZE:
        raise ValueError(f"{name} must be at least {MIN_SIZE} x {MIN_SIZE} pixels, got {a.shape[1:]}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return a


def brisque_features(images) -> np.ndarray:
    """The 36 BRISQUE features of each image: ``(n, 36)`` for a stack, ``(36,)`` for one image.

    ``images``: grey levels in [0, 255] (uint8 or float), shape (rows, cols) or (n, rows, cols).
    A constant image has no defined features (NaN).
    """
    stack = _as_stack(images)
    img = stack.astype(np.float64) / 255.0
    feats = np.concatenate([_scale_features(img), _scale_features(resize_half(img))], axis=1)
    return feats[0] if np.ndim(images) == 2 else feats


@functools.lru_cache(maxsize=1)
def _model_files() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("brisque")  # locate the package without importing its code
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'brisque' package (model files for BRISQUE) is not installed")
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    svm, norm = models / "svm.txt", models / "normalize.pickle"
    for p in (svm, norm):
        if not p.is_file():
            raise RuntimeError(f"BRISQUE model file missing: {p}")
    return svm, norm


def model_name() -> str:
    """Name of the model that produces BRISQUE scores (quoted in every report)."""
    try:
        version = importlib.metadata.version("brisque")
    except importlib.metadata.PackageNotFoundError:
        return "none (the 'brisque' package with the LIVE model files is not installed)"
    return f"LIVE epsilon-SVR (RBF) from brisque {version} (models/svm.txt + normalize.pickle), via libsvm-official"


def model_unavailable() -> str | None:
    """Why BRISQUE cannot score here (model files or ``libsvm`` missing or unreadable), or None when it can."""
    try:
        load_model()
    except (RuntimeError, ImportError, OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        return f"BRISQUE model unavailable: {exc}"
    return None


@functools.lru_cache(maxsize=1)
def load_model() -> dict:
    """The LIBSVM model (via ``libsvm-official``) and feature ranges, as arrays.

    Returns ``{"model", "sv", "coef", "rho", "gamma", "lo", "hi"}``; ``model`` is the
    ``libsvm`` object (used by the tests to check :func:`brisque_from_features`).
    """
    from libsvm import svm, svmutil

    svm_path, norm_path = _model_files()
    model = svmutil.svm_load_model(str(svm_path))
    if model.get_svm_type() != svm.svm_forms.EPSILON_SVR or model.param.kernel_type != svm.kernel_names.RBF:
        raise RuntimeError(f"{svm_path} is not an epsilon-SVR with an RBF kernel")
    with open(norm_path, "rb") as f:  # a dict of two 36-float lists shipped with the pinned package
        ranges = pickle.load(f)
    lo, hi = np.asarray(ranges["min_"], dtype=np.float64), np.asarray(ranges["max_"], dtype=np.float64)
    if lo.shape != (N_FEATURES,) or hi.shape != (N_FEATURES,):
        raise RuntimeError(f"unexpected BRISQUE feature ranges in {norm_path}")
    sv = np.zeros((model.get_nr_sv(), N_FEATURES))
    for i, row in enumerate(model.get_SV()):
        for j, v in row.items():
            if 1 <= j <= N_FEATURES:
                sv[i, j - 1] = v
    coef = np.asarray([c[0] for c in model.get_sv_coef()], dtype=np.float64)
    return {
        "model": model,
        "sv": sv,
        "coef": coef,
        "rho": float(model.rho[0]),
        "gamma": float(model.param.gamma),
        "lo": lo,
        "hi": hi,
    }


def scale_features(features: np.ndarray) -> np.ndarray:
    """Features scaled to [-1, 1] with the model's per-feature training ranges."""
    m = load_model()
    return -1.0 + 2.0 * (features - m["lo"]) / (m["hi"] - m["lo"])


def brisque_from_features(features: np.ndarray) -> np.ndarray:
    """SVR scores of feature rows ``(n, 36)``; rows with NaN features score NaN.

    ``score = sum_i coef_i exp(-gamma |x - sv_i|^2) - rho`` over the model's support vectors,
    evaluated for all rows at once (the same decision function as ``svm_predict``).
    """
    f = np.atleast_2d(np.asarray(features, dtype=np.float64))
    if f.shape[1] != N_FEATURES:
        raise ValueError(f"BRISQUE needs {N_FEATURES} features per image, got {f.shape[1]}")
    m = load_model()
    x = scale_features(f)
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ m["sv"].T + (m["sv"] ** 2).sum(1)[None, :]
    return np.exp(-m["gamma"] * np.maximum(d2, 0.0)) @ m["coef"] - m["rho"]


def brisque(images) -> np.ndarray | float:
    """BRISQUE score of each image (lower is better): an array for a stack, a float for one image."""
    scores = brisque_from_features(np.atleast_2d(brisque_features(images)))
    return float(scores[0]) if np.ndim(images) == 2 else scores
