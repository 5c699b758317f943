"""Per-slice no-reference scoring: uint8 scaling, slice sampling, chunk-by-chunk reading."""

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from skimage import data

from seiscore.metrics import brisque, piqe
from seiscore.metrics.noref import iter_slice_batches, sample_indices, score_slices, to_uint8


class RecordingArray:
    """An array-like that records every index it is read with (to check what dask loads)."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.ndim, self.reads = a, a.shape, a.dtype, a.ndim, []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.a[key]


def test_to_uint8_scales_each_slice_by_its_own_range():
    s = np.stack([np.linspace(-3, 5, 20).reshape(4, 5), np.full((4, 5), 2.0), np.arange(20.0).reshape(4, 5) * 1e6])
    u = to_uint8(s)
    assert u.dtype == np.uint8
    assert u[0].min() == 0 and u[0].max() == 255 and (u[1] == 0).all() and u[2].max() == 255


def test_sample_indices():
    assert sample_indices(10, None).tolist() == list(range(10))
    assert sample_indices(10, 50).tolist() == list(range(10))
    idx = sample_indices(401, 5)
    assert idx.tolist() == [0, 100, 200, 300, 400]
    with pytest.raises(ValueError, match="max_slices"):
        sample_indices(10, 0)


def test_batches_read_only_the_chunks_of_sampled_slices():
    rng = np.random.default_rng(0)
    rec = RecordingArray(rng.normal(size=(20, 24, 64)).astype(np.float32))
    da = xr.DataArray(dsa.from_array(rec, chunks=(20, 24, 8)), dims=("inline", "crossline", "sample"))
    idx = np.array([1, 3, 17, 18])  # chunks 0 and 2 of 8
    got = list(iter_slice_batches([da], "sample", idx, batch_size=16))
    assert np.concatenate([i for i, _ in got]).tolist() == idx.tolist()
    np.testing.assert_array_equal(np.concatenate([s[0] for _, s in got]), np.moveaxis(rec.a[:, :, idx], 2, 0))
    touched = {(k[2].start or 0) // 8 for k in rec.reads if isinstance(k, tuple) and k[2].stop}
    assert touched == {0, 2}


def test_score_slices_equals_direct_scores():
    cam = data.camera()[:96, :128].astype(np.float32)
    cube = np.stack([cam, cam[::-1], cam[:, ::-1] * 3 - 40], axis=2)  # (rows, cols, 3 slices)
    res = score_slices(xr.DataArray(cube, dims=("inline", "crossline", "sample")), max_slices=None)
    u = to_uint8(np.moveaxis(cube, 2, 0))
    np.testing.assert_allclose(res["brisque"], brisque(u))
    np.testing.assert_allclose(res["piqe"], piqe(u))
    np.testing.assert_allclose(score_slices(cube, dim=2, max_slices=2)["brisque"], brisque(u[[0, 2]]))
    with pytest.raises(ValueError, match="dimension"):
        score_slices(xr.DataArray(cube, dims=("a", "b", "c")), dim="sample")
