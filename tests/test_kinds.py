"""Data kinds: the registry, the one definition of the post-stack dims, tiling / tile state / jobs / QC over
any number of dims taken from the kind, and 3-D plans unchanged from before kinds."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

import seiscore.data.kinds as kinds_module
from seiscore.data.kinds import POSTSTACK3D, DataKind, UnknownDataKindError, get_kind, kinds, register_kind, store_dims
from seiscore.execution.blockwise.jobs import TileJob, denoise_tile, pending_work, write_tile
from seiscore.execution.blockwise.state import TileState
from seiscore.execution.blockwise.tiling import (
    TileConfig,
    TilePlan,
    core_from_neighbours,
    denoise_block,
    denoise_tiled,
    plan_tiles,
)
from seiscore.qc.images import _views, section_images, section_views

VELOCITY = DataKind(
    name="velocity2d_test",
    description="2-D velocity model (z, x)",
    dims=("z", "x"),
    variable="velocity",
    chunks=(None, 64),
    vertical="z",
    tileable=("z", "x"),
)
GATHERS4D = DataKind(
    name="gathers4d_test",
    description="4-D data with a live mask over its first two dims",
    dims=("a", "b", "offset", "t"),
    variable="data",
    mask="live",
    mask_dims=("a", "b"),
    chunks=(8, 8, None, None),
    qc_sections=("a", "t"),
    vertical="t",
    tileable=("a", "b", "offset", "t"),
)


@pytest.fixture
def registered(monkeypatch):
    """The test kinds registered at run time (the registry restored afterwards)."""
    monkeypatch.setattr(kinds_module, "_registered", {})
    register_kind(VELOCITY)
    register_kind(GATHERS4D)
    return {k.name: k for k in (VELOCITY, GATHERS4D)}


# -- registry ------------------------------------------------------------------------------------------
def test_unknown_kind_names_the_known_ones(monkeypatch):
    monkeypatch.setattr(kinds_module, "_registered", {})
    assert get_kind("poststack3d") is POSTSTACK3D
    with pytest.raises(UnknownDataKindError, match=r"unknown data kind 'poststack2d'; known: .*poststack3d"):
        get_kind("poststack2d")
    assert isinstance(UnknownDataKindError("x"), ValueError)


def test_a_kind_registered_at_run_time_is_found(registered):
    assert get_kind("velocity2d_test") == VELOCITY
    assert {"poststack3d", "velocity2d_test", "gathers4d_test"} <= set(kinds())
    assert store_dims("velocity2d_test") == ("z", "x") and store_dims(VELOCITY) == ("z", "x")
    known = "gathers4d_test, poststack3d, shotgather, traces3c, velocity2d, velocity2d_test"
    with pytest.raises(UnknownDataKindError, match=f"known: {known}"):
        get_kind("nope")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"mask": "m", "mask_dims": ("x",)}, r"mask dims \('x',\) must be a prefix of \('z', 'x'\)"),
        ({"chunks": (8,)}, "1 chunks for 2 dims"),
        ({"dims": ("z", "z"), "chunks": (1, 1)}, "dims must be distinct"),
        ({"qc_sections": ("y",)}, r"qc_sections names unknown dims \['y'\]"),
        ({"tileable": ("y",)}, r"tileable names unknown dims \['y'\]"),
        ({"vertical": "depth"}, r"vertical names unknown dims \['depth'\]"),
        ({"mask_dims": ("z",)}, "mask dims .* without a mask variable"),
    ],
)
def test_an_invalid_kind_is_refused(fields, message):
    data = {**VELOCITY.model_dump(), **fields}
    with pytest.raises(ValueError, match=message):
        DataKind(**data)


def test_the_post_stack_dims_have_one_definition():
    from seiscore.io import store

    assert store_dims() == POSTSTACK3D.dims == ("inline", "crossline", "sample")
    assert store.DIMS is POSTSTACK3D.dims
    assert POSTSTACK3D.mask_dims == ("inline", "crossline") and POSTSTACK3D.axis("sample") == 2
    with pytest.raises(ValueError, match=r"'time' is not a dim of poststack3d data \(dims: inline, crossline"):
        POSTSTACK3D.axis("time")


# -- N-d tiling ----------------------------------------------------------------------------------------
ND_CASES = {
    "1d": ((57,), TileConfig(tile=(12,), halo=(4,))),
    "2d": ((33, 29), TileConfig(tile=(10, 8), halo=(4, 6))),
    "4d": ((13, 11, 9, 10), TileConfig(tile=(4, 4, 4, 4), halo=(2, 2, 4, 2))),
}


@pytest.mark.parametrize("case", sorted(ND_CASES))
def test_nd_weights_are_a_partition_of_unity_and_identity_is_exact(case):
    shape, cfg = ND_CASES[case]
    plan = plan_tiles(shape, cfg)
    assert plan.ndim == len(shape) and all(g > 1 for g in plan.grid)  # cuts on every axis
    assert all(b > 0 for b in plan.blend)  # and blending on every axis
    total = np.zeros(shape)
    for t in plan.tiles():
        assert len(t.index) == len(shape) and t.key == "-".join(map(str, t.index))
        w = plan.weights(t, np.float64)
        assert w.shape == tuple(b - a for a, b in t.support) and w.min() >= 0 and w.max() <= 1
        total[t.support_slices] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    vol = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(denoise_tiled(vol, lambda b: b.copy(), cfg), vol, atol=1e-6)
    pointwise = lambda b: np.tanh(2 * b) - 0.25 * b  # noqa: E731
    np.testing.assert_allclose(denoise_tiled(vol, pointwise, cfg), pointwise(vol), atol=1e-5)


def test_4d_core_assembly_from_neighbours_matches_the_in_memory_blend():
    shape, cfg = ND_CASES["4d"]
    vol = np.random.default_rng(4).standard_normal(shape)
    den = lambda b: b**2 - b.mean()  # noqa: E731 - block-dependent: the blending is visible
    plan = plan_tiles(shape, cfg)
    blocks = {t.key: denoise_block(vol[t.ext_slices], t, plan, den) for t in plan.tiles()}
    out = np.zeros_like(vol)
    for t in plan.tiles():
        assert t in list(plan.neighbours(t))
        out[t.core_slices] = core_from_neighbours(t, plan, lambda o: blocks[o.key])
    np.testing.assert_allclose(out, denoise_tiled(vol, den, cfg), atol=1e-12)


def test_nd_inputs_are_checked_with_clear_messages():
    with pytest.raises(ValueError, match=r"tile config has 2 axes .* the shape \(10,\) has 1"):
        plan_tiles((10,), TileConfig(tile=(4, None), halo=(0, 0)))
    with pytest.raises(ValueError, match="chunks must be 2 positive lengths"):
        plan_tiles((10, 10), TileConfig(tile=(4, None), halo=(0, 0)), chunks=(4, 10, 1))
    with pytest.raises(ValueError, match="tile and halo must have one entry per axis"):
        TileConfig(tile=(4, 4, 4, 4), halo=(1, 1))
    with pytest.raises(ValueError, match="tile needs at least one axis"):
        TileConfig(tile=(), halo=())
    with pytest.raises(ValueError, match="volume must be an array of 1 or more dims"):
        denoise_tiled(3.0, lambda b: b, TileConfig(tile=(4,), halo=(0,)))
    with pytest.raises(ValueError, match="volume contains 1 NaN"):
        denoise_tiled(np.array([1.0, np.nan, 2.0]), lambda b: b, TileConfig(tile=(None,), halo=(0,)))
    plan = plan_tiles((10, 10), TileConfig(tile=(4, None), halo=(0, 0)))
    with pytest.raises(ValueError, match=r"tile index \(0, 0, 0\) is outside the tile grid \(3, 1\)"):
        plan.tile((0, 0, 0))
    with pytest.raises(ValueError, match="tile plan needs one entry per axis"):
        TilePlan(shape=(4, 4), chunks=(4,), halo=(0, 0), blend=(0, 0), edges=((0, 4), (0, 4)))


def test_tile_config_from_named_dims_and_kinds(registered):
    cfg = TileConfig.for_dims(POSTSTACK3D.dims, tile={"inline": 44}, halo={"inline": 2})
    assert cfg == TileConfig(tile=(44, None, None), halo=(2, 0, 0))
    assert TileConfig.for_kind("velocity2d_test", tile={"x": 16}, halo={"x": 4}) == TileConfig(
        tile=(None, 16), halo=(0, 4)
    )
    with pytest.raises(ValueError, match="tile names unknown dims \\['time'\\]; dims are inline, crossline, sample"):
        TileConfig.for_dims(POSTSTACK3D.dims, tile={"time": 8})
    whole_z = VELOCITY.model_copy(update={"name": "velocity_whole_z", "tileable": ("x",)})
    with pytest.raises(ValueError, match="velocity_whole_z tiles may not cut 'z'"):
        TileConfig.for_kind(whole_z, tile={"z": 8})


# -- 3-D plans are the plans of before kinds (expectations computed on the code before this change) -------
OLD_PLANS = {  # (shape, output chunks, default tiles of the method) -> TilePlan JSON of the old 3-axis code
    ("tlsm", (100, 200, 400), (44, 64, 400)): '{"shape":[100,200,400],"chunks":[44,64,400],"halo":[2,0,0],'
    '"blend":[1,0,0],"edges":[[0,44,88,100],[0,200],[0,400]]}',
    ("tlsm", (48, 100, 200), (44, 32, 200)): '{"shape":[48,100,200],"chunks":[44,32,200],"halo":[2,0,0],'
    '"blend":[0,0,0],"edges":[[0,48],[0,100],[0,200]]}',
    ("tlsm", (130, 70, 50), (44, 64, 50)): '{"shape":[130,70,50],"chunks":[44,64,50],"halo":[2,0,0],'
    '"blend":[1,0,0],"edges":[[0,44,88,130],[0,70],[0,50]]}',
    ("tlsm", (9, 11, 13), (9, 4, 4)): '{"shape":[9,11,13],"chunks":[9,4,4],"halo":[2,0,0],'
    '"blend":[0,0,0],"edges":[[0,9],[0,11],[0,13]]}',
    ("ssb", (100, 200, 400), (32, 64, 400)): '{"shape":[100,200,400],"chunks":[32,64,400],"halo":[0,0,0],'
    '"blend":[0,0,0],"edges":[[0,32,64,100],[0,200],[0,400]]}',
    ("ssb", (48, 100, 200), (32, 32, 200)): '{"shape":[48,100,200],"chunks":[32,32,200],"halo":[0,0,0],'
    '"blend":[0,0,0],"edges":[[0,32,48],[0,100],[0,200]]}',
    ("ssb", (130, 70, 50), (32, 64, 50)): '{"shape":[130,70,50],"chunks":[32,64,50],"halo":[0,0,0],'
    '"blend":[0,0,0],"edges":[[0,32,64,96,130],[0,70],[0,50]]}',
}
# The default tilings (TLSM: 44 + halo 2 along its tube axis, inline; SSB: stacks of 32 inline sections).
DEFAULT_TILES = {
    "tlsm": TileConfig.for_dims(POSTSTACK3D.dims, tile={"inline": 44}, halo={"inline": 2}),
    "ssb": TileConfig.for_dims(POSTSTACK3D.dims, tile={"inline": 32}),
}


@pytest.mark.parametrize("key", sorted(OLD_PLANS), ids=lambda k: f"{k[0]}-{'x'.join(map(str, k[1]))}")
def test_3d_plans_equal_the_old_plans(key):
    method, shape, chunks = key
    plan = plan_tiles(shape, DEFAULT_TILES[method], chunks)
    assert plan.model_dump_json() == OLD_PLANS[key]  # same JSON, hence the same run keys as before
    old = TilePlan.model_validate_json(OLD_PLANS[key])
    assert old == plan and old.model_dump_json() == OLD_PLANS[key]


def test_3d_weights_and_neighbours_equal_the_old_ones():
    old = '{"shape":[41,37,23],"chunks":[12,10,8],"halo":[6,4,4],"blend":[3,2,2],"edges":[[0,12,24,41],[0,10,20,30,37],[0,8,16,23]]}'  # noqa: E501
    plan = plan_tiles((41, 37, 23), TileConfig(tile=(12, 10, 8), halo=(6, 4, 4)))
    assert plan.model_dump_json() == old
    expected = {  # index -> (support, sum of weights, neighbour keys) from the old code
        (0, 0, 0): (((0, 15), (0, 12), (0, 10)), 960.0, 8),
        (1, 1, 1): (((9, 27), (8, 22), (6, 18)), 960.0, 27),
        (2, 3, 2): (((21, 41), (28, 37), (14, 23)), 833.0, 8),
        (1, 2, 0): (((9, 27), (18, 32), (0, 10)), 960.0, 18),
    }
    for index, (support, total, n_neighbours) in expected.items():
        t = plan.tile(index)
        assert t.support == support and float(plan.weights(t, np.float64).sum()) == pytest.approx(total, abs=1e-9)
        assert len(list(plan.neighbours(t))) == n_neighbours
    assert [n.key for n in plan.neighbours(plan.tile((2, 3, 2)))] == [
        "1-2-1", "1-2-2", "1-3-1", "1-3-2", "2-2-1", "2-2-2", "2-3-1", "2-3-2",
    ]  # fmt: skip


# -- tile state and jobs over the kind's dims, on real Zarr stores --------------------------------------
def test_tile_state_on_a_2d_plan_saves_blocks_flags_and_resumes(tmp_path):
    plan = plan_tiles((16, 30), TileConfig(tile=(8, 10), halo=(4, 2)), chunks=(4, 5))
    assert plan.grid == (2, 3)
    store = tmp_path / "out.zarr"
    zarr.create_group(str(store), zarr_format=3)
    state = TileState(store)
    assert state.run_key() is None and state.done() == set()
    assert state.begin("key-1", plan) == 0
    g = zarr.open_group(str(store), mode="r")["tile_state"]
    assert g["done"].shape == (2, 3) and g["done"].chunks == (1, 1)
    assert g["blocks"].ndim == 4 and g["blocks"].chunks[:2] == (1, 1)
    t = plan.tile((1, 2))
    block = np.arange(np.prod([b - a for a, b in t.support]), dtype=np.float32).reshape([b - a for a, b in t.support])
    with pytest.raises(FileNotFoundError, match="scratch block of tile 1-2 is missing"):
        state.load_block(t)
    state.save_block(t, block)
    assert state.ready() == {"1-2"} and state.has_block(t)
    np.testing.assert_array_equal(state.load_block(t), block)
    state.mark_done(plan.tile((0, 0)))
    # a second process resuming the same run sees the records; only the other tiles are left to write
    again = TileState(str(store))
    assert again.begin("key-1", plan) == 1 and again.done() == {"0-0"} and again.ready() == {"1-2"}
    to_compute, to_write = pending_work(plan, again)
    assert sorted(to_write) == ["0-1", "0-2", "1-0", "1-1", "1-2"] and "1-2" not in to_compute
    assert to_write["1-1"] == [n.key for n in plan.neighbours(plan.tile((1, 1)))]
    again.clear_blocks()
    assert again.ready() == set() and again.done() == {"0-0"}
    # a different run key starts over
    assert TileState(store).begin("key-2", plan) == 0 and TileState(store).done() == set()


def _job(tmp_path, kind: DataKind, data: np.ndarray, cfg: TileConfig, chunks, live=None) -> TileJob:
    """Input and output stores of ``kind`` on disk, and the tile job over them."""
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    g = zarr.create_group(str(inp), zarr_format=3)
    g.create_array(kind.variable, data=data.astype(np.float32), chunks=chunks, dimension_names=kind.dims)
    if live is not None:
        g.create_array(kind.mask, data=live, chunks=chunks[: live.ndim], dimension_names=kind.mask_dims)
    o = zarr.create_group(str(out), zarr_format=3)
    o.create_array(kind.variable, shape=data.shape, chunks=chunks, dtype="float32", fill_value=-9.0)
    plan = plan_tiles(data.shape, cfg, chunks)
    fields = dict(input_store=str(inp), output_store=str(out), plan=plan, spec=None, scale=(0.5, 2.0), kind=kind.name)
    return _KindJob.model_construct(**fields)


if "kind" in TileJob.model_fields:  # the methods part's TileJob
    _KindJob = TileJob
else:  # until it lands: the agreed field on a subclass

    class _KindJob(TileJob):
        kind: str = "poststack3d"


def _run(job: TileJob, denoiser, keys_first=None) -> None:
    state = TileState(job.output_store)
    state.begin("run", job.plan)
    to_compute, to_write = pending_work(job.plan, state)
    for key in to_compute:
        denoise_tile(job, key, denoiser)
    for key in keys_first if keys_first is not None else to_write:
        write_tile(job, key)


def test_jobs_tile_a_2d_kind_without_a_mask_and_resume(tmp_path, registered):
    data = np.random.default_rng(5).standard_normal((16, 30)).astype(np.float32)
    job = _job(tmp_path, VELOCITY, data, TileConfig(tile=(8, 10), halo=(4, 2)), (4, 5))
    assert job.plan.grid == (2, 3)
    twice = lambda b: 2 * b  # noqa: E731 - pointwise: the tiled result equals the whole-array result
    _run(job, twice, keys_first=["0-0", "1-2"])  # an interrupted run: two tiles written
    assert TileState(job.output_store).done() == {"0-0", "1-2"}
    _run(job, twice)  # resume: writes the rest only
    to_compute, to_write = pending_work(job.plan, TileState(job.output_store))
    assert to_compute == [] and to_write == {}
    out = zarr.open_group(job.output_store)["velocity"][...]
    centre, half = job.scale
    np.testing.assert_allclose(out, ((data - centre) / half * 2) * half + centre, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"tile key must be 2 integers joined by '-' \(e\.g\. '0-0'\), got '0-0-0'"):
        write_tile(job, "0-0-0")


def test_jobs_apply_a_mask_over_the_kinds_leading_dims_in_4d(tmp_path, registered):
    rng = np.random.default_rng(6)
    data = rng.standard_normal((9, 8, 6, 10)).astype(np.float32)
    live = rng.random((9, 8)) > 0.3
    data[~live] = np.nan  # dead entries: never seen by the denoiser, filled in the output
    cfg = TileConfig.for_kind("gathers4d_test", tile={"a": 4, "b": 4, "offset": 3, "t": 4}, halo={"a": 2, "t": 2})
    seen = []

    def check(block):
        seen.append(np.isfinite(block).all())
        return block.copy()

    job = _job(tmp_path, GATHERS4D, data, cfg, (4, 4, 3, 4), live=live)
    assert job.plan.ndim == 4 and job.plan.grid == (2, 2, 2, 3)
    _run(job, check)
    assert seen and all(seen)
    out = zarr.open_group(job.output_store)["data"][...]
    np.testing.assert_allclose(out[live], data[live], rtol=1e-5, atol=1e-5)
    assert (out[~live] == -9.0).all()


# -- QC views from the kind ----------------------------------------------------------------------------
def test_post_stack_views_are_unchanged():
    da = xr.DataArray(np.zeros((4, 5, 6), dtype=np.float32), dims=POSTSTACK3D.dims)
    assert section_views() == ("inline", "crossline", "time")
    assert _views(da) == {
        "inline": ({"inline": 2}, ("sample", "crossline")),
        "crossline": ({"crossline": 2}, ("sample", "inline")),
        "time": ({"sample": 3}, ("inline", "crossline")),
    }
    with pytest.raises(ValueError, match="must have the poststack3d dims .* missing sample"):
        _views(da.rename(sample="time"))


def test_qc_draws_a_2d_kind_whole_and_other_kinds_by_their_sections(tmp_path, registered):
    rng = np.random.default_rng(7)
    vel = xr.DataArray(rng.standard_normal((12, 20)), dims=("z", "x"), coords={"z": np.arange(12) * 10.0})
    paths = section_images(vel, vel * 0.5, tmp_path / "vel", kind="velocity2d_test")
    assert set(paths) == {"field_before", "field_after", "field_removed"} and section_views(VELOCITY) == ("field",)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths.values())
    assert _views(vel, VELOCITY) == {"field": ({}, ("z", "x"))}

    g = xr.DataArray(rng.standard_normal((5, 6, 4, 7)), dims=GATHERS4D.dims)
    views = _views(g, GATHERS4D, at={"b": 1})
    assert views == {
        "a": ({"a": 2, "offset": 2}, ("t", "b")),  # offset held at its middle, t drawn downwards
        "t": ({"t": 3, "offset": 2}, ("a", "b")),
    }
    paths = section_images(None, g, tmp_path / "g", kind=GATHERS4D)
    assert set(paths) == {"a_after", "t_after"}
    with pytest.raises(ValueError, match="t index 9 is outside 0..6"):
        _views(g, GATHERS4D, index={"t": 9})
