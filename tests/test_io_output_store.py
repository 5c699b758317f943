"""The pipeline's path: create_output_store -> write amplitudes -> mark_complete -> export."""

from __future__ import annotations

import numpy as np
import pytest
import segyio
import xarray as xr

from seiscore.io import IncompleteStoreError, create_output_store, export, ingest, mark_complete, open_survey
from seiscore.io.segy_write import SegyWriteSpec, write_cube

SHAPE = (10, 12, 30)


def test_output_store_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.standard_normal(SHAPE).astype(np.float32)
    missing = np.zeros(SHAPE[:2], bool)
    missing[2, 3] = True
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(format=1, sorting="crossline"), missing=missing)
    store = ingest(src, tmp_path / "in.zarr", chunks=(4, 4, 16))

    out = create_output_store(store, tmp_path / "out.zarr", attrs={"processing": "SEISCORE TLSM PRESET SYNTHETIC"})
    with pytest.raises(IncompleteStoreError):
        open_survey(out)
    ds_in = open_survey(store)
    ds_out = open_survey(out, require_complete=False)
    assert ds_out["amplitude"].chunks == ds_in["amplitude"].chunks
    assert float(np.abs(ds_out["amplitude"].values).max()) == 0.0  # fill value until written
    for name in ("cdp_x", "cdp_y", "live_mask", "trace_index", "header_cdp_x", "header_inline_3d"):
        xr.testing.assert_identical(ds_out[name], ds_in[name])

    denoised = (ds_in["amplitude"] * 0.5).astype(np.float32)
    for il in (slice(0, 8), slice(8, 10)):  # chunk-aligned tiles, written with plain xarray as the pipeline does
        tile = (
            denoised.isel(inline=il)
            .to_dataset(name="amplitude")
            .drop_vars(["cdp_x", "cdp_y", "inline", "crossline", "sample"])
        )
        tile.to_zarr(out, region={"inline": il, "crossline": slice(None), "sample": slice(None)}, mode="r+")
    mark_complete(out)
    np.testing.assert_array_equal(open_survey(out)["amplitude"].values, denoised.values)

    dest = export(out, tmp_path / "out.sgy")
    with segyio.open(str(src), ignore_geometry=True) as a, segyio.open(str(dest), ignore_geometry=True) as b:
        assert a.tracecount == b.tracecount and int(b.format) == 1
        assert [dict(a.header[i]) for i in range(a.tracecount)] == [dict(b.header[i]) for i in range(b.tracecount)]
        np.testing.assert_allclose(b.trace.raw[:], a.trace.raw[:] * 0.5, rtol=1e-6)
        assert dict(a.bin) == dict(b.bin)
        text = bytes(b.text[0]).decode("ascii", "replace")
    assert "SEISCORE TLSM PRESET SYNTHETIC" in text
