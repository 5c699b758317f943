"""Training pairs and the fixed held-out set, cut from ``seiscore.data.synth`` surveys.

Training: for every noise level (footprint peak F, Gaussian sigma) of ``DataConfig.noise_levels``
(default: the paper's 12 levels) ``train_surveys_per_level`` surveys are generated with their own
noise seeds and section sizes (crossline / time lengths scaled by up to 1 + ``shape_jitter``);
2-D sections along ``section_axes`` are normalised (:mod:`seiscore.methods.ssb.scaling`, noisy section's
statistics) and ``crops_per_survey`` random ``patch`` x ``patch`` crops are drawn. Optional
user pairs (.npz with ``noisy`` and ``clean`` of shape (n, H, W)) add crops the same way.

Held-out: one survey of ``heldout_shape`` per noise level, with seeds disjoint from training;
``heldout_sections_per_level`` evenly spaced sections along ``section_axes[0]``, kept whole and
un-normalised (inference normalises), together with the cubes they come from (to run 3-D
denoisers such as TLSM on the same data). ``dataset_hash`` fingerprints both sets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from seiscore.data.synth import make_survey
from seiscore.methods.ssb.config import DataConfig
from seiscore.methods.ssb.scaling import normalise, section_stats

_HELDOUT_SEED_OFFSET = 1_000_003


@dataclass
class PairSet:
    """Normalised training crops, (n, 1, P, P) float32 each."""

    noisy: np.ndarray
    clean: np.ndarray


@dataclass
class HeldOut:
    """Whole held-out sections (n, H, W) in survey amplitudes, and where they come from."""

    noisy: np.ndarray
    clean: np.ndarray
    levels: list[tuple[float, float]]
    cubes: list[tuple[np.ndarray, np.ndarray]] = field(repr=False)  # (noisy, clean) (inline, crossline, time)
    axis: int = 0
    indices: list[int] = field(default_factory=list)

    def level_of_section(self) -> np.ndarray:
        """Index into ``levels`` of every section."""
        return np.repeat(np.arange(len(self.levels)), len(self.indices))


def _sections(cube: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(cube, axis, 0)


def _random_crops(
    noisy: np.ndarray, clean: np.ndarray, n: int, patch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` aligned random crops from (S, H, W) stacks, normalised by each noisy section's stats."""
    s, h, w = noisy.shape
    if h < patch or w < patch:
        raise ValueError(f"training sections of {h}x{w} samples are smaller than one {patch}x{patch} patch")
    mu, sd = section_stats(noisy)
    zn, zc = normalise(noisy, mu, sd), normalise(clean, mu, sd)
    idx = rng.integers(0, s, n)
    y0, x0 = rng.integers(0, h - patch + 1, n), rng.integers(0, w - patch + 1, n)
    win = lambda a: sliding_window_view(a, (patch, patch), axis=(1, 2))[idx, y0, x0]  # noqa: E731
    return win(zn), win(zc)


def _survey_shape(cfg: DataConfig, rng: np.random.Generator) -> tuple[int, int, int]:
    n_il, n_xl, n_t = cfg.survey_shape
    scale = 1.0 + cfg.shape_jitter * rng.random(2)
    return n_il, int(round(n_xl * scale[0])), int(round(n_t * scale[1]))


def training_pairs(cfg: DataConfig, patch: int) -> PairSet:
    """Random normalised crops from synthetic surveys at every noise level (plus user pairs)."""
    rng = np.random.default_rng(cfg.seed)
    noisy, clean = [], []
    for k, (f_peak, sigma) in enumerate(cfg.noise_levels):
        for j in range(cfg.train_surveys_per_level):
            n_il, n_xl, n_t = _survey_shape(cfg, rng)
            y, x = make_survey(
                n_inline=n_il,
                n_crossline=n_xl,
                n_time=n_t,
                footprint_peak=f_peak,
                sigma=sigma,
                seed=cfg.seed * 7919 + k * 101 + j,
            )
            for a_i, axis in enumerate(cfg.section_axes):
                n = cfg.crops_per_survey // len(cfg.section_axes) + (a_i < cfg.crops_per_survey % len(cfg.section_axes))
                cn, cc = _random_crops(_sections(y, axis), _sections(x, axis), n, patch, rng)
                noisy.append(cn)
                clean.append(cc)
    if cfg.user_pairs is not None:
        un, uc = load_user_pairs(cfg.user_pairs)
        n = cfg.crops_per_survey * max(1, len(un) // 8)
        cn, cc = _random_crops(un, uc, n, patch, rng)
        noisy.append(cn)
        clean.append(cc)
    return PairSet(np.concatenate(noisy)[:, None], np.concatenate(clean)[:, None])


def load_user_pairs(path) -> tuple[np.ndarray, np.ndarray]:
    """User-provided pairs: an .npz with float arrays ``noisy`` and ``clean`` of the same shape (n, H, W)."""
    with np.load(path) as z:
        missing = {"noisy", "clean"} - set(z.files)
        if missing:
            raise ValueError(f"user pairs file {path} lacks array(s) {sorted(missing)}; expected 'noisy' and 'clean'")
        noisy, clean = np.asarray(z["noisy"], np.float32), np.asarray(z["clean"], np.float32)
    if noisy.shape != clean.shape or noisy.ndim != 3:
        raise ValueError(
            f"user pairs in {path}: 'noisy' {noisy.shape} and 'clean' {clean.shape} must share one (n, H, W) shape"
        )
    if not (np.isfinite(noisy).all() and np.isfinite(clean).all()):
        raise ValueError(f"user pairs in {path} contain NaN or Inf samples")
    return noisy, clean


def heldout_set(cfg: DataConfig) -> HeldOut:
    """One survey per noise level (seeds disjoint from training) and evenly spaced whole sections."""
    axis = cfg.section_axes[0]
    n_il, n_xl, n_t = cfg.heldout_shape
    length = cfg.heldout_shape[axis]
    indices = np.linspace(0, length - 1, cfg.heldout_sections_per_level + 2)[1:-1].round().astype(int).tolist()
    cubes, noisy, clean = [], [], []
    for k, (f_peak, sigma) in enumerate(cfg.noise_levels):
        y, x = make_survey(
            n_inline=n_il,
            n_crossline=n_xl,
            n_time=n_t,
            footprint_peak=f_peak,
            sigma=sigma,
            seed=_HELDOUT_SEED_OFFSET + cfg.seed * 7919 + k,
        )
        cubes.append((y, x))
        noisy.append(_sections(y, axis)[indices])
        clean.append(_sections(x, axis)[indices])
    return HeldOut(
        np.concatenate(noisy), np.concatenate(clean), [tuple(lv) for lv in cfg.noise_levels], cubes, axis, indices
    )


def dataset_hash(pairs: PairSet, heldout: HeldOut) -> str:
    """SHA-256 over the training crops and the held-out sections (shapes and bytes)."""
    h = hashlib.sha256()
    for a in (pairs.noisy, pairs.clean, heldout.noisy, heldout.clean):
        a = np.ascontiguousarray(a, dtype=np.float32)
        h.update(json.dumps(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def describe(cfg: DataConfig, pairs: PairSet, heldout: HeldOut) -> dict:
    """Training-data description for the model card."""
    return {
        "source": "seiscore.data.synth synthetic surveys "
        "(three dipping Ricker events + time-decaying footprint + Gaussian noise)",
        "config": json.loads(cfg.model_dump_json()),
        "train_pairs": int(pairs.noisy.shape[0]),
        "train_patch": list(pairs.noisy.shape[-2:]),
        "heldout_sections": int(heldout.noisy.shape[0]),
        "heldout_section_shape": list(heldout.noisy.shape[1:]),
        "heldout_axis": heldout.axis,
        "hash": dataset_hash(pairs, heldout),
    }
