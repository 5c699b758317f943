"""Tile planning with halos and seam-free blending of per-tile denoiser outputs.

A survey of shape ``(n0, n1, n2)`` is cut into *cores* that partition it and are
aligned to the output store's chunks (a core is a whole number of chunks, so two
writers never touch the same chunk). Each core is grown by a *halo* ``h_a`` on every
side (clipped at the survey edge) to give the *extended block* the denoiser sees.

Blending: a tile contributes on its *support*, the core grown by ``b_a = h_a // 2``
per side, with the separable weight ``w(x) = w_0(x_0) w_1(x_1) w_2(x_2)``. Along an
axis with a neighbour on the left, the weight rises over the band
``[c0 - b, c0 + b)`` as the raised cosine

    w(x) = 1/2 - 1/2 cos(pi (x - c0 + b + 1/2) / (2 b)),

the mirror image falls on the right, and it is 1 elsewhere (and up to a survey edge).
The neighbour's ramp over the same band is ``1 - w``, so the weights form a partition
of unity: ``sum_t w_t = 1`` everywhere, and the blend is ``out = sum_t w_t y_t``. The
samples within ``h - b`` of a block edge (where a denoiser's boundary artefacts live)
get weight 0.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

Int3 = tuple[int, int, int]


class TileConfig(BaseModel):
    """Tile core shape and halo, per store axis (``None`` in ``tile`` = the whole axis)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tile: tuple[int | None, int | None, int | None] = Field(
        (64, 64, None), description="core size per axis (rounded up to whole chunks); None = whole axis"
    )
    halo: Int3 = Field((16, 16, 0), description="samples added on each side of a core for the denoiser")

    @model_validator(mode="after")
    def _check(self) -> "TileConfig":
        for a, (t, h) in enumerate(zip(self.tile, self.halo)):
            if t is not None and t < 2:
                raise ValueError(f"tile size on axis {a} must be >= 2 or None, got {t}")
            if h < 0:
                raise ValueError(f"halo on axis {a} must be >= 0, got {h}")
        return self


class Tile(BaseModel):
    """One tile: grid index, core, extended block and blend support as [start, stop) per axis."""

    model_config = ConfigDict(frozen=True)

    index: Int3
    core: tuple[tuple[int, int], ...]
    ext: tuple[tuple[int, int], ...]
    support: tuple[tuple[int, int], ...]

    @property
    def key(self) -> str:
        return "-".join(map(str, self.index))

    @staticmethod
    def _slices(bounds) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in bounds)

    @property
    def core_slices(self) -> tuple[slice, ...]:
        return self._slices(self.core)

    @property
    def ext_slices(self) -> tuple[slice, ...]:
        return self._slices(self.ext)

    @property
    def support_slices(self) -> tuple[slice, ...]:
        return self._slices(self.support)

    @property
    def n_samples(self) -> int:
        return int(np.prod([b - a for a, b in self.core]))


class TilePlan(BaseModel):
    """All tiles of a survey plus the geometry they were planned from (JSON-serialisable)."""

    model_config = ConfigDict(frozen=True)

    shape: Int3
    chunks: Int3
    halo: Int3
    blend: Int3 = Field(description="half-width b of the blending band per axis")
    edges: tuple[tuple[int, ...], ...] = Field(description="core boundaries per axis (grid lines)")

    @property
    def grid(self) -> Int3:
        return tuple(len(e) - 1 for e in self.edges)  # type: ignore[return-value]

    @property
    def n_tiles(self) -> int:
        return int(np.prod(self.grid))

    def tile(self, index: Int3) -> Tile:
        core, ext, sup = [], [], []
        for a, i in enumerate(index):
            c0, c1 = self.edges[a][i], self.edges[a][i + 1]
            n, h, b = self.shape[a], self.halo[a], self.blend[a]
            core.append((c0, c1))
            ext.append((max(c0 - h, 0), min(c1 + h, n)))
            sup.append((max(c0 - b, 0), min(c1 + b, n)))
        return Tile(index=tuple(index), core=tuple(core), ext=tuple(ext), support=tuple(sup))

    def tiles(self) -> Iterator[Tile]:
        for index in itertools.product(*(range(g) for g in self.grid)):
            yield self.tile(index)

    def neighbours(self, tile: Tile) -> Iterator[Tile]:
        """Tiles whose support overlaps ``tile``'s core (itself included)."""
        ranges = [range(max(i - 1, 0), min(i + 2, g)) for i, g in zip(tile.index, self.grid)]
        for index in itertools.product(*ranges):
            other = self.tile(index)
            if all(s0 < c1 and c0 < s1 for (s0, s1), (c0, c1) in zip(other.support, tile.core)):
                yield other

    def weights(self, tile: Tile, dtype=np.float32) -> np.ndarray:
        """Blend weights over ``tile.support`` (separable raised-cosine ramps)."""
        w = np.ones((1, 1, 1), dtype=np.float64)
        for a in range(3):
            w = w * _axis_weight(tile.support[a], tile.core[a], self.shape[a], self.blend[a]).reshape(
                [-1 if k == a else 1 for k in range(3)]
            )
        return w.astype(dtype)


def _axis_weight(support: tuple[int, int], core: tuple[int, int], n: int, b: int) -> np.ndarray:
    x = np.arange(*support, dtype=np.float64)
    w = np.ones_like(x)
    if b == 0:
        return w
    c0, c1 = core
    if c0 > 0:  # neighbour on the left: rise over [c0 - b, c0 + b)
        left = (x >= c0 - b) & (x < c0 + b)
        w[left] *= 0.5 - 0.5 * np.cos(np.pi * (x[left] - c0 + b + 0.5) / (2 * b))
    if c1 < n:  # neighbour on the right: fall over [c1 - b, c1 + b)
        right = (x >= c1 - b) & (x < c1 + b)
        w[right] *= 0.5 + 0.5 * np.cos(np.pi * (x[right] - c1 + b + 0.5) / (2 * b))
    return w


def _axis_edges(n: int, tile: int | None, chunk: int, halo: int) -> tuple[int, ...]:
    if tile is None or tile >= n:
        return (0, n)
    step = -(-tile // chunk) * chunk  # whole chunks
    edges = list(range(0, n, step)) + [n]
    # A last core thinner than the halo (or a quarter tile) is merged into its neighbour:
    # the blend ramps of both its sides would otherwise overlap.
    if len(edges) > 2 and edges[-1] - edges[-2] < max(halo, step // 4):
        del edges[-2]
    return tuple(edges)


def plan_tiles(shape, config: TileConfig | None = None, chunks=None) -> TilePlan:
    """Plan tiles over a volume of ``shape`` whose output store has ``chunks``.

    Cores are rounded up to whole chunks (``chunks`` defaults to the core size, i.e.
    one chunk per tile); the blend half-width is ``halo // 2`` and must fit in a core.
    """
    config = config or TileConfig()
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive lengths, got {shape}")
    if chunks is None:
        chunks = tuple(n if t is None else min(t, n) for t, n in zip(config.tile, shape))
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != 3 or min(chunks) < 1:
        raise ValueError(f"chunks must be 3 positive lengths, got {chunks}")
    edges = tuple(_axis_edges(n, t, c, h) for n, t, c, h in zip(shape, config.tile, chunks, config.halo))
    blend = []
    for a, (e, h) in enumerate(zip(edges, config.halo)):
        b = h // 2 if len(e) > 2 else 0
        thinnest = min(np.diff(e))
        if 2 * b > thinnest:
            raise ValueError(
                f"halo {h} on axis {a} is too large for a core of {thinnest} samples (needs halo <= core); "
                f"use a larger tile or a smaller halo"
            )
        blend.append(b)
    return TilePlan(shape=shape, chunks=chunks, halo=config.halo, blend=tuple(blend), edges=edges)


def denoise_block(
    block: np.ndarray, tile: Tile, plan: TilePlan, denoiser: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Denoise one extended block and return ``weights * output`` cropped to the tile's support."""
    expected = tuple(b - a for a, b in tile.ext)
    if block.shape != expected:
        raise ValueError(f"block for tile {tile.key} has shape {block.shape}, expected {expected}")
    out = np.asarray(denoiser(block))
    if out.shape != block.shape:
        raise ValueError(f"denoiser returned shape {out.shape} for a block of shape {block.shape} (tile {tile.key})")
    crop = tuple(slice(s0 - e0, s1 - e0) for (s0, s1), (e0, _) in zip(tile.support, tile.ext))
    return (out[crop] * plan.weights(tile, out.dtype)).astype(block.dtype, copy=False)


def core_from_neighbours(tile: Tile, plan: TilePlan, weighted: Callable[[Tile], np.ndarray]) -> np.ndarray:
    """Assemble the blended core of ``tile`` from its neighbours' weighted support blocks.

    ``weighted(t)`` returns (or memory-maps) tile ``t``'s output of :func:`denoise_block`.
    """
    out = None
    for other in plan.neighbours(tile):
        block = weighted(other)
        lo = [max(s0, c0) for (s0, _), (c0, _) in zip(other.support, tile.core)]
        hi = [min(s1, c1) for (_, s1), (_, c1) in zip(other.support, tile.core)]
        src = tuple(slice(l - s0, h - s0) for l, h, (s0, _) in zip(lo, hi, other.support))
        dst = tuple(slice(l - c0, h - c0) for l, h, (c0, _) in zip(lo, hi, tile.core))
        if out is None:
            out = np.zeros(tuple(c1 - c0 for c0, c1 in tile.core), dtype=block.dtype)
        out[dst] += block[src]
    return out


def denoise_tiled(
    volume: np.ndarray,
    denoiser: Callable[[np.ndarray], np.ndarray],
    config: TileConfig | None = None,
    chunks=None,
    progress: Callable[[Tile], None] | None = None,
) -> np.ndarray:
    """Denoise an in-memory volume tile by tile and blend (same shape and dtype out).

    The reference implementation of the pipeline's tiling, used by tests and benchmarks.
    """
    from seiscore.core.validation import as_float_volume

    volume = as_float_volume("volume", volume)
    plan = plan_tiles(volume.shape, config, chunks)
    out = np.zeros_like(volume)
    for tile in plan.tiles():
        out[tile.support_slices] += denoise_block(volume[tile.ext_slices], tile, plan, denoiser)
        if progress is not None:
            progress(tile)
    return out
