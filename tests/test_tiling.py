"""Tiling: plans aligned to chunks, partition-of-unity blending, neighbour assembly, TLSM on tiles vs whole."""

from __future__ import annotations

import numpy as np
import pytest

from seiscore.bench.tiling import seam_ratio
from seiscore.data.synth import from_canonical, make_survey, to_canonical
from seiscore.execution.blockwise.tiling import (
    TileConfig,
    core_from_neighbours,
    denoise_block,
    denoise_tiled,
    plan_tiles,
)
from seiscore.metrics import psnr


def test_cores_partition_the_volume_on_chunk_boundaries():
    plan = plan_tiles((50, 70, 33), TileConfig(tile=(20, 17, None), halo=(6, 4, 0)), chunks=(10, 5, 33))
    count = np.zeros(plan.shape, dtype=int)
    for t in plan.tiles():
        count[t.core_slices] += 1
        for axis, (c0, c1) in enumerate(t.core):
            assert c0 % plan.chunks[axis] == 0 and (c1 % plan.chunks[axis] == 0 or c1 == plan.shape[axis])
            e0, e1 = t.ext[axis]
            assert e0 == max(c0 - plan.halo[axis], 0) and e1 == min(c1 + plan.halo[axis], plan.shape[axis])
    assert (count == 1).all()
    assert plan.edges[1] == (0, 20, 40, 60, 70)  # 17 rounded up to whole chunks of 5


def test_thin_last_core_is_merged():
    plan = plan_tiles((70, 10, 10), TileConfig(tile=(32, None, None), halo=(8, 0, 0)))
    assert plan.edges[0] == (0, 32, 70)


def test_weights_form_a_partition_of_unity_and_identity_is_exact():
    rng = np.random.default_rng(1)
    vol = rng.standard_normal((41, 37, 23)).astype(np.float32)
    cfg = TileConfig(tile=(12, 10, 8), halo=(6, 4, 4))
    total = np.zeros(vol.shape)
    plan = plan_tiles(vol.shape, cfg)
    for t in plan.tiles():
        w = plan.weights(t)
        assert w.min() >= 0 and w.max() <= 1
        total[t.support_slices] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    np.testing.assert_allclose(denoise_tiled(vol, lambda b: b.copy(), cfg), vol, atol=1e-6)


def test_core_assembly_from_neighbour_blocks_matches_in_memory_blend():
    rng = np.random.default_rng(2)
    vol = rng.standard_normal((30, 26, 12))
    cfg = TileConfig(tile=(10, 8, None), halo=(4, 4, 0))
    den = lambda b: b**2 - b.mean()  # noqa: E731 - block-dependent: blending is visible
    plan = plan_tiles(vol.shape, cfg)
    blocks = {t.key: denoise_block(vol[t.ext_slices], t, plan, den) for t in plan.tiles()}
    out = np.zeros_like(vol)
    for t in plan.tiles():
        out[t.core_slices] = core_from_neighbours(t, plan, lambda o: blocks[o.key])
    np.testing.assert_allclose(out, denoise_tiled(vol, den, cfg), atol=1e-12)


def test_invalid_inputs_are_named():
    with pytest.raises(ValueError, match="halo 20 on axis 0 is too large"):
        plan_tiles((64, 10, 10), TileConfig(tile=(16, None, None), halo=(20, 0, 0)))
    with pytest.raises(ValueError, match="tile size on axis 1"):
        TileConfig(tile=(8, 1, None))
    with pytest.raises(ValueError, match="volume must be an array of 1 or more dims"):
        denoise_tiled(np.float32(1.0), lambda b: b)
    with pytest.raises(ValueError, match=r"tile config has 3 axes .* the shape \(4, 4\) has 2"):
        denoise_tiled(np.zeros((4, 4)), lambda b: b)  # the default tiles are 3-D
    with pytest.raises(ValueError, match="tile and halo must have one entry per axis"):
        TileConfig(tile=(8, None), halo=(2, 0, 0))
    with pytest.raises(ValueError, match="volume must be float32 or float64"):
        denoise_tiled(np.zeros((4, 4), dtype=int), lambda b: b, TileConfig(tile=(2, 2), halo=(0, 0)))
    with pytest.raises(ValueError, match="denoiser returned shape"):
        denoise_tiled(np.zeros((8, 8, 8)), lambda b: b[1:], TileConfig(tile=(4, None, None), halo=(2, 0, 0)))


def test_tlsm_on_tiles_matches_whole_cube_without_seams():
    """Quality bar on a reduced paper cube (the full 100x200x400 figures are in benchmarks/results/tiling.md)."""
    from seiscore.data.kinds import POSTSTACK3D
    from seiscore.methods.registry import get_method
    from seiscore.methods.tlsm import denoise
    from seiscore.methods.tlsm.method import TLSMSpec

    noisy, clean = make_survey(n_inline=48, n_crossline=100, n_time=200)
    run = lambda b: from_canonical(denoise(np.ascontiguousarray(to_canonical(b)), preset="synthetic"))  # noqa: E731
    whole = run(noisy)
    cfg = (
        get_method("tlsm")
        .default_tiling(TLSMSpec(), POSTSTACK3D, noisy.shape)
        .model_copy(update={"tile": (16, None, None)})
    )
    tiled = denoise_tiled(noisy, run, cfg)
    plan = plan_tiles(noisy.shape, cfg)
    assert plan.n_tiles == 3
    ref = to_canonical(clean)
    p_whole, p_tiled = psnr(ref, to_canonical(whole)), psnr(ref, to_canonical(tiled))
    assert p_tiled > 40 and abs(p_tiled - p_whole) <= 0.2, (p_whole, p_tiled)
    # No seam: the error near core borders is no larger than elsewhere.
    assert seam_ratio(tiled - clean, plan) < 1.2
    assert seam_ratio(tiled - whole, plan) < 1.5


def test_survey_scale_comes_from_the_range_ingest_measured(tmp_path, write_synthetic_segy):
    import warnings

    import xarray as xr
    import zarr

    from seiscore.execution.blockwise.jobs import survey_scale
    from seiscore.execution.pipeline import RANGE_ATTR, amplitude_range
    from seiscore.io import ingest

    noisy_sgy, _, noisy, _ = write_synthetic_segy(tmp_path, shape=(6, 8, 10))
    store = ingest(noisy_sgy, tmp_path / "s.zarr", chunks=(4, 4, 4))
    ds = xr.open_zarr(str(store))
    g = zarr.open_group(str(store), mode="r+")
    assert (g.attrs["amplitude_min"], g.attrs["amplitude_max"]) == (float(noisy.min()), float(noisy.max()))
    measured = survey_scale(ds["amplitude"], ds["live_mask"])  # one pass over the survey
    assert amplitude_range(store, ds["amplitude"], ds["live_mask"]) == pytest.approx(measured, rel=1e-7)
    # without ingest's range (a store from an older version) the pass gives the same, and is cached
    g = zarr.open_group(str(store), mode="r+")
    del g.attrs["amplitude_min"], g.attrs[RANGE_ATTR]
    assert amplitude_range(store, ds["amplitude"], ds["live_mask"]) == pytest.approx(measured, rel=1e-7)
    assert zarr.open_group(str(store)).attrs[RANGE_ATTR] == pytest.approx(list(measured), rel=1e-7)
    with warnings.catch_warnings():  # the store still opens from its consolidated metadata
        warnings.simplefilter("error")
        assert xr.open_zarr(str(store)).attrs[RANGE_ATTR] == pytest.approx(list(measured), rel=1e-7)
