"""Tiles bounded in memory: TLSM's memory model against measured peaks, the budget planner, seam-free blending
with cuts on every axis, and the per-tile peak a tile task reports."""

from __future__ import annotations

import numpy as np
import pytest

from seiscore.core.rss import PeakRSS
from seiscore.data.kinds import POSTSTACK3D
from seiscore.execution.blockwise.tiling import (
    BudgetCut,
    BudgetError,
    TileConfig,
    denoise_tiled,
    plan_for_budget,
    plan_tiles,
)
from seiscore.methods.tlsm.memory import measure, tlsm_peak_bytes
from seiscore.methods.tlsm.method import TLSMMethod, TLSMSpec

GiB = 2**30


def test_peak_rss_sees_an_allocation_and_its_release():
    with PeakRSS() as p:
        a = np.ones(20_000_000)  # 160 MB touched
        del a
    assert p.increment >= 150e6
    assert p.peak >= p.start + p.increment - 1


@pytest.mark.parametrize("canonical", [(64, 200, 24), (160, 48, 40)])
def test_memory_model_bounds_measured_peaks_of_small_tiles(canonical):
    measured = measure(canonical, threads=1, iterations=2)["increment"]
    planned = tlsm_peak_bytes(canonical, 4, 1)
    assert measured <= planned  # an upper bound ...
    assert measured >= 0.5 * planned  # ... that is not wildly pessimistic


def test_planner_keeps_whole_cross_section_when_it_fits_and_cuts_more_axes_as_the_budget_shrinks():
    method, spec, shape = TLSMMethod(), TLSMSpec(), (128, 1024, 1000)
    roomy = method.default_tiling(spec, POSTSTACK3D, shape, budget=64 * GiB)
    assert roomy.tile == (44, 256, None) and roomy.halo == (2, 16, 0)  # crossline in 256s for speed, samples whole
    assert method.default_tiling(spec, POSTSTACK3D, (100, 200, 400), budget=GiB).tile == (44, None, None)
    previous = None
    for budget in (2 * GiB, 1 * GiB, GiB // 4, GiB // 8):
        cfg = method.default_tiling(spec, POSTSTACK3D, shape, budget=budget)
        plan = plan_tiles(shape, cfg)
        assert method.peak_memory(spec, plan.largest_block()) <= budget
        assert all(h > 0 for t, h in zip(cfg.tile, cfg.halo) if t is not None)  # every cut axis blends
        if previous is not None:
            assert plan.n_tiles >= previous
        previous = plan.n_tiles
    assert cfg.tile[1] is not None and cfg.tile[2] is not None  # the smallest budget cut crossline and sample
    # below the smallest tiles allowed: those tiles (the pre-flight checks them against the worker limit) ...
    smallest = method.default_tiling(spec, POSTSTACK3D, shape, budget=GiB // 100)
    assert smallest.tile == (16, 128, 128) and smallest.halo == (2, 16, 32)
    # ... or, asked strictly, a one-line error naming the budget and the smallest block's need
    cuts = [BudgetCut(axis=1, halo=16, min_core=128)]
    with pytest.raises(BudgetError, match=r"memory budget of 10.2 MiB: the smallest block allowed, 48 x 160 x 1000"):
        plan_for_budget(shape, lambda b: method.peak_memory(spec, b), GiB // 100, roomy, cuts)


def test_budget_comes_from_the_settings(monkeypatch):
    from seiscore.core.settings import get_settings, task_memory_budget

    monkeypatch.setenv("SEIS_TASK_MEMORY_BYTES", "3GB")
    assert task_memory_budget() == 3 * 10**9
    monkeypatch.delenv("SEIS_TASK_MEMORY_BYTES")
    monkeypatch.setenv("SEIS_DASK_MEMORY_LIMIT", "8GiB")
    monkeypatch.setenv("SEIS_DASK_THREADS_PER_WORKER", "2")
    assert task_memory_budget() == 2 * GiB  # half the worker's limit per thread
    with pytest.raises(ValueError, match="task_memory_bytes"):
        get_settings(task_memory_bytes="lots")


def test_cuts_on_all_three_axes_blend_without_seams():
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(0)
    vol = rng.standard_normal((30, 40, 50)).astype(np.float32)
    cfg = TileConfig(tile=(10, 12, 16), halo=(6, 6, 8))
    plan = plan_tiles(vol.shape, cfg)
    assert min(plan.grid) >= 3
    # the identity through tiles is exact: the weights are a partition of unity on every cut axis
    np.testing.assert_allclose(denoise_tiled(vol, lambda b: b, cfg), vol, rtol=0, atol=1e-6)
    # a local filter (radius 2 <= halo - blend) gives the whole-volume result everywhere: no seam
    filt = lambda b: uniform_filter(b, size=5, mode="reflect")  # noqa: E731
    np.testing.assert_allclose(denoise_tiled(vol, filt, cfg), filt(vol), rtol=0, atol=1e-5)


def test_tlsm_tiles_cut_on_every_axis_show_no_seam_against_the_clean_cube():
    from seiscore.bench.tiling import seam_ratio
    from seiscore.data.synth_realistic import make_realistic

    noisy, clean = make_realistic((24, 96, 160), seed=1)
    run = TLSMMethod().build(TLSMSpec(threads_per_task=1, params={"iterations": 10}), POSTSTACK3D)
    cfg = TileConfig(tile=(12, 48, 80), halo=(2, 16, 32))
    out = denoise_tiled(noisy, run, cfg)
    plan = plan_tiles(noisy.shape, cfg)
    assert plan.grid == (2, 2, 2)
    assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)  # it denoises
    assert seam_ratio(out - clean, plan) < 1.3  # errors near core borders are no larger than elsewhere


_TILE_PROBE = """
import json, sys
import numpy as np
from seiscore.data.kinds import POSTSTACK3D
from seiscore.execution.blockwise.jobs import TileJob, denoise_tile
from seiscore.methods.tlsm.method import TLSMMethod, TLSMSpec
TLSMMethod().build(TLSMSpec(), POSTSTACK3D)(np.zeros((6, 8, 10), np.float32))  # numba caches loaded
job = TileJob.model_validate_json(open(sys.argv[1]).read())
print(json.dumps([denoise_tile(job, t.key) for t in job.plan.tiles()]))
"""


def test_a_tile_task_reports_its_peak_and_stays_within_the_plan(tmp_path, write_synthetic_segy):
    import json
    import subprocess
    import sys

    from seiscore import io
    from seiscore.execution.pipeline import make_job, prepare_output

    segy = write_synthetic_segy(tmp_path, (16, 160, 300))[0]
    store = io.ingest(segy, tmp_path / "in.zarr", chunks=(8, 160, 300))
    cfg = TileConfig(tile=(8, 80, 150), halo=(2, 16, 32))
    spec = TLSMSpec(threads_per_task=1, params={"iterations": 2}, tiles=cfg)
    job = make_job(store, str(tmp_path / "out.zarr"), spec)
    prepare_output(job, "run")
    (tmp_path / "job.json").write_text(job.model_dump_json())
    # a fresh process, as a worker: the heap holds no freed memory from earlier tests to hide the tile's peak
    out = subprocess.run(
        [sys.executable, "-c", _TILE_PROBE, str(tmp_path / "job.json")], check=True, capture_output=True, text=True
    )
    infos = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(infos) == job.plan.n_tiles == 8
    planned = TLSMMethod().peak_memory(spec, job.plan.largest_block())
    for info in infos:
        assert info["peak_rss_bytes"] >= info["tile_rss_bytes"] >= 0
        assert info["tile_rss_bytes"] <= 1.2 * planned  # a run never exceeds its planned peak by more than 20 %
    assert infos[0]["tile_rss_bytes"] >= 0.5 * planned  # the first tile of a fresh worker shows its whole peak
