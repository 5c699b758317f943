"""Tile planning with halos and seam-free blending of per-tile denoiser outputs, over any number of dims.

A volume of shape ``(n_0, ..., n_{d-1})`` (any ``d >= 1``; the dims and their order are the data
kind's, :mod:`seiscore.data.kinds`) is cut into *cores* that partition it and are aligned to the
output store's chunks (a core is a whole number of chunks, so two writers never touch the same
chunk). Each core is grown by a *halo* ``h_a`` on every side of axis ``a`` (clipped at the volume
edge) to give the *extended block* the denoiser sees. An axis with tile ``None`` stays whole.

Blending: a tile contributes on its *support*, the core grown by ``b_a = h_a // 2`` per side, with
the separable weight ``w(x) = prod_a w_a(x_a)``. Along an axis with a neighbour on the left, the
1-D weight rises over the band ``[c0 - b, c0 + b)`` as the raised cosine

    w_a(x) = 1/2 - 1/2 cos(pi (x - c0 + b + 1/2) / (2 b)),

the mirror image falls on the right, and it is 1 elsewhere (and up to a volume edge). The
neighbour's ramp over the same band is ``1 - w_a``, so along each axis the 1-D weights of the
cores sum to 1; the tiles are the product grid of the per-axis cores, hence

    sum_t w_t(x) = prod_a sum_{i_a} w_{a, i_a}(x_a) = 1

everywhere (a partition of unity in any number of dims), and the blend is ``out = sum_t w_t y_t``.
The samples within ``h - b`` of a block edge (where a denoiser's boundary artefacts live) get
weight 0.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:  # pragma: no cover
    from seiscore.data.kinds import DataKind

IntN = tuple[int, ...]


class TileConfig(BaseModel):
    """Tile core shape and halo, per store axis (``None`` in ``tile`` = the whole axis); any number of axes,
    ``tile`` and ``halo`` of the same length (the data's number of dims)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tile: tuple[int | None, ...] = Field(
        (64, 64, None), description="core size per axis (rounded up to whole chunks); None = whole axis"
    )
    halo: IntN = Field((16, 16, 0), description="samples added on each side of a core for the denoiser")

    @model_validator(mode="after")
    def _check(self) -> TileConfig:
        if not self.tile:
            raise ValueError("tile needs at least one axis")
        if len(self.tile) != len(self.halo):
            raise ValueError(
                f"tile and halo must have one entry per axis, got {len(self.tile)} tile sizes {self.tile} "
                f"and {len(self.halo)} halos {self.halo}"
            )
        for a, (t, h) in enumerate(zip(self.tile, self.halo)):
            if t is not None and t < 2:
                raise ValueError(f"tile size on axis {a} must be >= 2 or None, got {t}")
            if h < 0:
                raise ValueError(f"halo on axis {a} must be >= 0, got {h}")
        return self

    @property
    def ndim(self) -> int:
        """Number of axes the config tiles."""
        return len(self.tile)

    @classmethod
    def for_dims(
        cls, dims, tile: Mapping[str, int | None] | None = None, halo: Mapping[str, int] | None = None
    ) -> TileConfig:
        """The config over named ``dims`` (store order) from ``{dim: core size}`` and ``{dim: halo}``; a dim
        missing from ``tile`` stays whole, one missing from ``halo`` gets none.

        E.g. ``TileConfig.for_dims(("inline", "crossline", "sample"), tile={"inline": 44}, halo={"inline": 2})``
        is ``TileConfig(tile=(44, None, None), halo=(2, 0, 0))``.
        """
        dims = tuple(dims)
        tile, halo = dict(tile or {}), dict(halo or {})
        for what, given in (("tile", tile), ("halo", halo)):
            unknown = [d for d in given if d not in dims]
            if unknown:
                raise ValueError(f"{what} names unknown dims {unknown}; dims are {', '.join(dims)}")
        return cls(tile=tuple(tile.get(d) for d in dims), halo=tuple(int(halo.get(d, 0)) for d in dims))

    @classmethod
    def for_kind(
        cls, kind: str | DataKind, tile: Mapping[str, int | None] | None = None, halo: Mapping[str, int] | None = None
    ) -> TileConfig:
        """:meth:`for_dims` over a data kind's dims, refusing to cut a dim the kind keeps whole."""
        from seiscore.data.kinds import as_kind

        kind = as_kind(kind)
        config = cls.for_dims(kind.dims, tile, halo)
        check_tiling(config, kind)
        return config


def check_tiling(config: TileConfig, kind: str | DataKind) -> None:
    """Raise a one-line ``ValueError`` unless ``config`` fits ``kind``: one entry per dim, and only its
    ``tileable`` dims cut or given a halo."""
    from seiscore.data.kinds import as_kind

    kind = as_kind(kind)
    if config.ndim != kind.ndim:
        raise ValueError(
            f"tiles have {config.ndim} axes but {kind.name} data has {kind.ndim} dims ({', '.join(kind.dims)})"
        )
    for dim, t, h in zip(kind.dims, config.tile, config.halo):
        if dim not in kind.tileable and (t is not None or h):
            raise ValueError(
                f"{kind.name} tiles may not cut {dim!r} (tile {t}, halo {h}); tileable dims: "
                f"{', '.join(kind.tileable) or 'none'}"
            )


class Tile(BaseModel):
    """One tile: grid index, core, extended block and blend support as [start, stop) per axis."""

    model_config = ConfigDict(frozen=True)

    index: IntN
    core: tuple[tuple[int, int], ...]
    ext: tuple[tuple[int, int], ...]
    support: tuple[tuple[int, int], ...]

    @property
    def key(self) -> str:
        """The tile's name: its grid index joined by dashes, ``"i-j-..."`` (one number per axis)."""
        return "-".join(map(str, self.index))

    @staticmethod
    def _slices(bounds) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in bounds)

    @property
    def core_slices(self) -> tuple[slice, ...]:
        """Slices of the core (the part this tile writes)."""
        return self._slices(self.core)

    @property
    def ext_slices(self) -> tuple[slice, ...]:
        """Slices of the extended block (core plus halo: what the denoiser sees)."""
        return self._slices(self.ext)

    @property
    def support_slices(self) -> tuple[slice, ...]:
        """Slices of the blend support (core plus half the halo: where the tile's weight is non-zero)."""
        return self._slices(self.support)

    @property
    def n_samples(self) -> int:
        """Samples in the core."""
        return int(np.prod([b - a for a, b in self.core]))


class TilePlan(BaseModel):
    """All tiles of a volume plus the geometry they were planned from (JSON-serialisable; one entry per axis in
    every field, any number of axes)."""

    model_config = ConfigDict(frozen=True)

    shape: IntN
    chunks: IntN
    halo: IntN
    blend: IntN = Field(description="half-width b of the blending band per axis")
    edges: tuple[tuple[int, ...], ...] = Field(description="core boundaries per axis (grid lines)")

    @model_validator(mode="after")
    def _same_axes(self) -> TilePlan:
        lengths = {len(getattr(self, f)) for f in ("shape", "chunks", "halo", "blend", "edges")}
        if len(lengths) != 1 or not self.shape:
            raise ValueError(
                f"tile plan needs one entry per axis in shape, chunks, halo, blend and edges; got shape {self.shape}, "
                f"chunks {self.chunks}, halo {self.halo}, blend {self.blend}, {len(self.edges)} edge lists"
            )
        return self

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def grid(self) -> IntN:
        """Number of tiles along each axis."""
        return tuple(len(e) - 1 for e in self.edges)

    @property
    def n_tiles(self) -> int:
        """Number of tiles."""
        return int(np.prod(self.grid))

    def tile(self, index) -> Tile:
        """The tile at grid ``index`` (one integer per axis)."""
        index = tuple(int(i) for i in index)
        if len(index) != self.ndim or not all(0 <= i < g for i, g in zip(index, self.grid)):
            raise ValueError(f"tile index {index} is outside the tile grid {self.grid}")
        core, ext, sup = [], [], []
        for a, i in enumerate(index):
            c0, c1 = self.edges[a][i], self.edges[a][i + 1]
            n, h, b = self.shape[a], self.halo[a], self.blend[a]
            core.append((c0, c1))
            ext.append((max(c0 - h, 0), min(c1 + h, n)))
            sup.append((max(c0 - b, 0), min(c1 + b, n)))
        return Tile(index=tuple(index), core=tuple(core), ext=tuple(ext), support=tuple(sup))

    def tiles(self) -> Iterator[Tile]:
        """Every tile, in grid (C) order."""
        for index in itertools.product(*(range(g) for g in self.grid)):
            yield self.tile(index)

    def neighbours(self, tile: Tile) -> Iterator[Tile]:
        """Tiles whose support overlaps ``tile``'s core (itself included)."""
        ranges = [range(max(i - 1, 0), min(i + 2, g)) for i, g in zip(tile.index, self.grid)]
        for index in itertools.product(*ranges):
            other = self.tile(index)
            if all(s0 < c1 and c0 < s1 for (s0, s1), (c0, c1) in zip(other.support, tile.core)):
                yield other

    def largest_block(self) -> IntN:
        """The largest extended block (core plus halo, clipped at the volume) per axis over all tiles."""
        out = []
        for e, h, n in zip(self.edges, self.halo, self.shape):
            out.append(max(min(c1 + h, n) - max(c0 - h, 0) for c0, c1 in zip(e[:-1], e[1:])))
        return tuple(out)

    def weights(self, tile: Tile, dtype=np.float32) -> np.ndarray:
        """Blend weights over ``tile.support``: the product over axes of the 1-D raised-cosine ramps."""
        n = self.ndim
        w = np.ones((1,) * n, dtype=np.float64)
        for a in range(n):
            w = w * _axis_weight(tile.support[a], tile.core[a], self.shape[a], self.blend[a]).reshape(
                [-1 if k == a else 1 for k in range(n)]
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
    """Plan tiles over a volume of ``shape`` (any number of dims) whose output store has ``chunks``.

    ``config`` has one entry per axis (default: :class:`TileConfig`'s, for 3 axes). Cores are rounded up
    to whole chunks (``chunks`` defaults to the core size, i.e. one chunk per tile); the blend half-width
    is ``halo // 2`` and must fit in a core.
    """
    config = config or TileConfig()
    shape = tuple(int(n) for n in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"shape must be one or more positive lengths, got {shape}")
    if config.ndim != len(shape):
        raise ValueError(
            f"tile config has {config.ndim} axes (tile {config.tile}, halo {config.halo}) but the shape {shape} "
            f"has {len(shape)}; give one tile size and one halo per axis"
        )
    if chunks is None:
        chunks = tuple(n if t is None else min(t, n) for t, n in zip(config.tile, shape))
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != len(shape) or min(chunks) < 1:
        raise ValueError(f"chunks must be {len(shape)} positive lengths (one per axis), got {chunks}")
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


class BudgetCut(BaseModel):
    """One axis the budget planner may cut: its halo when cut and the smallest core it may cut down to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    axis: int = Field(ge=0)
    halo: int = Field(ge=0)
    min_core: int = Field(ge=2)


class BudgetError(ValueError):
    """No tiling within the allowed cuts keeps a tile task under the memory budget (one-line message)."""


def plan_for_budget(
    shape,
    peak: Callable[[IntN], int],
    budget: int,
    base: TileConfig,
    cuts: tuple[BudgetCut, ...] | list[BudgetCut],
    chunks=None,
    strict: bool = True,
    gpu_peak: Callable[[IntN], int] | None = None,
    gpu_budget: int | None = None,
) -> TileConfig:
    """The tile config whose largest block needs at most ``budget`` bytes at its peak (``peak(block_shape)``,
    a method's memory model), starting from ``base`` and cutting the axes of ``cuts`` in their order.

    With ``gpu_peak`` (a method's device-memory model) and ``gpu_budget`` both given, a block fits only when it
    also needs at most ``gpu_budget`` bytes of GPU memory; without them the plan is the host memory's alone.

    Along each axis of ``cuts`` in turn, the axis is split into the fewest equal cores (``ceil(n / k)``,
    at least ``min_core``) that fit; if even ``min_core`` does not, the axis keeps ``min_core`` and the next
    axis is cut. An axis already cut in ``base`` may be cut finer (its core shrinks, its halo stays the
    larger of both). The result keeps every cut of ``base`` (e.g. TLSM's tube tiles) and adds halos on the
    newly cut axes, so the N-d blending (:class:`TilePlan`) covers every cut axis. When no allowed cut fits:
    raises :class:`BudgetError` (``strict``) or returns the smallest tiles allowed (the caller checks them
    against the hard limit, e.g. the worker's memory limit).
    """
    shape = tuple(int(n) for n in shape)
    tile, halo = list(base.tile), list(base.halo)

    def block_peak() -> tuple[int, IntN]:
        cfg = TileConfig(tile=tuple(tile), halo=tuple(halo))
        plan = plan_tiles(shape, cfg, _budget_chunks(shape, cfg, chunks))
        block = plan.largest_block()
        return int(peak(block)), block

    gpu = gpu_peak is not None and gpu_budget is not None

    def fits(need: int, block: IntN) -> bool:
        return need <= budget and (not gpu or gpu_peak(block) <= gpu_budget)

    need, block = block_peak()
    if fits(need, block):
        return base
    for cut in cuts:
        a, n = cut.axis, shape[cut.axis]
        current = n if tile[a] is None else min(tile[a], n)
        h = max(halo[a], cut.halo)
        smallest = max(cut.min_core, 2 * (h // 2), 2)  # blend bands of one core must not overlap
        for k in range(2, -(-n // smallest) + 1):
            core = max(-(-n // k), smallest)
            if core >= current:
                continue
            tile[a], halo[a] = core, h
            need, block = block_peak()
            if fits(need, block):
                return TileConfig(tile=tuple(tile), halo=tuple(halo))
            if core == smallest:
                break
    if not strict:
        return TileConfig(tile=tuple(tile), halo=tuple(halo))
    if need <= budget and gpu:
        raise BudgetError(
            f"no tiling fits a tile task in the GPU memory budget of {_mib(gpu_budget)}: the smallest block allowed, "
            f"{' x '.join(map(str, block))}, needs ~{_mib(gpu_peak(block))} on the GPU (raise the budget, e.g. "
            f"SEIS_GPU_MEMORY_BYTES, or give smaller tiles)"
        )
    raise BudgetError(
        f"no tiling fits a tile task in the memory budget of {_mib(budget)}: the smallest block allowed, "
        f"{' x '.join(map(str, block))}, needs ~{_mib(need)} (raise the budget, e.g. SEIS_TASK_MEMORY_BYTES, "
        f"or give smaller tiles)"
    )


def _mib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _budget_chunks(shape: IntN, cfg: TileConfig, chunks) -> IntN | None:
    """Chunks for planning under a budget: the given ones along whole axes, the core along cut axes."""
    if chunks is None:
        return None
    return tuple(int(min(t, n)) if t is not None else int(c) for t, n, c in zip(cfg.tile, shape, chunks))


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
        src = tuple(slice(a - s0, b - s0) for a, b, (s0, _) in zip(lo, hi, other.support))
        dst = tuple(slice(a - c0, b - c0) for a, b, (c0, _) in zip(lo, hi, tile.core))
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
    """Denoise an in-memory volume (any number of dims >= 1) tile by tile and blend (same shape and dtype out).

    The reference implementation of the pipeline's tiling, used by tests and benchmarks.
    """
    from seiscore.core.validation import as_float_volume

    ndim = np.ndim(volume)
    if ndim < 1:
        raise ValueError(f"volume must be an array of 1 or more dims, got a {ndim}-D value")
    volume = as_float_volume("volume", volume, ndim=ndim, min_len=1)
    plan = plan_tiles(volume.shape, config, chunks)
    out = np.zeros_like(volume)
    for tile in plan.tiles():
        out[tile.support_slices] += denoise_block(volume[tile.ext_slices], tile, plan, denoiser)
        if progress is not None:
            progress(tile)
    return out
