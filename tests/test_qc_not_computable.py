"""A QC metric that cannot be computed on a survey is n/a with its reason, never an error.

Real stores (xarray -> Zarr) too small for BRISQUE / PIQE / SSIM, constant or all-NaN volumes, and a
BRISQUE installation without its model files go through :func:`seiscore.execution.pipeline.run_quality` (metrics,
section images, HTML report) as the flow calls it.
"""

import importlib
import json

import numpy as np
import pytest
import xarray as xr

from seiscore.execution.pipeline import run_quality, summary_metrics
from seiscore.qc import quality_metrics, write_qc_report
from seiscore.qc.metrics import NO_FINITE_VALUE


def _store(path, amp):
    il, xl = np.arange(1, 1 + amp.shape[0]), np.arange(10, 10 + amp.shape[1])
    ds = xr.Dataset(
        {"amplitude": (("inline", "crossline", "sample"), amp.astype(np.float32))},
        coords={"inline": il, "crossline": xl, "sample": ("sample", np.arange(amp.shape[2]) * 4.0, {"units": "ms"})},
    )
    ds.to_zarr(path, mode="w")
    return path


def _amp(path):
    return xr.open_zarr(path)["amplitude"]


def _report_text(result) -> str:
    with open(result["report"], encoding="utf-8") as fh:
        return fh.read()


def test_slices_smaller_than_16_by_16(tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.normal(size=(8, 20, 12))
    noisy, denoised = clean + rng.normal(size=clean.shape), clean + 0.1 * rng.normal(size=clean.shape)
    stores = [_store(tmp_path / f"{k}.zarr", a) for k, a in (("in", noisy), ("out", denoised), ("ref", clean))]
    result = run_quality(stores[0], stores[1], tmp_path / "qc", reference=stores[2], survey="tiny")
    m = result["metrics"]
    json.dumps(m, allow_nan=False)
    for name in ("brisque", "piqe"):
        assert m[name]["reason"] == (
            "time slices are 8 x 20 (inline x crossline), smaller than the 16 x 16 images BRISQUE and PIQE score"
        )
        assert m[name]["before"] == m[name]["after"] == {"mean": None, "per_slice": [None] * 12}
    assert "SSIM needs slices of at least 11 x 11" in m["ssim"]["reason"] and m["ssim"]["after"]["mean"] is None
    assert m["psnr"]["after"]["mean"] > m["psnr"]["before"]["mean"] and "reason" not in m["psnr"]
    assert m["leakage"]["mean"] is not None and "reason" not in m["leakage"]

    summary = summary_metrics(m)
    assert summary["brisque_before"] is None and summary["piqe_after"] is None and summary["ssim_after"] is None
    assert summary["psnr_after"] is not None
    assert set(summary["not_computed"]) == {"brisque", "piqe", "ssim"}

    html = _report_text(result)
    assert "n/a (time slices are 8 x 20 (inline x crossline), smaller than the 16 x 16" in html
    assert sorted(result["images"]) == sorted(
        f"{v}_{k}" for v in ("inline", "crossline", "time") for k in ("before", "after", "removed")
    )


@pytest.mark.parametrize("output", ["zeros", "nan"])
def test_constant_and_all_nan_volumes(tmp_path, output):
    rng = np.random.default_rng(2)
    noisy = rng.normal(size=(16, 20, 10))
    out = np.zeros_like(noisy) if output == "zeros" else np.full_like(noisy, np.nan)
    before, after = (_amp(_store(tmp_path / f"{k}.zarr", a)) for k, a in (("in", noisy), ("out", out)))
    m = quality_metrics(before, after)
    assert m["brisque"]["before"]["mean"] is not None and m["brisque"]["after"]["mean"] is None
    assert m["brisque"]["reason"] == f"after: {NO_FINITE_VALUE}"
    assert summary_metrics(m)["brisque_after"] is None and summary_metrics(m)["brisque_before"] is not None
    assert m["piqe"]["after"]["mean"] == 100.0  # PIQE defines a flat image's score


def test_constant_input_and_output(tmp_path):
    flat = np.full((16, 16, 8), 3.0)
    result = run_quality(_store(tmp_path / "in.zarr", flat), _store(tmp_path / "out.zarr", flat), tmp_path / "qc")
    assert result["metrics"]["brisque"]["reason"] == NO_FINITE_VALUE
    assert all(p.endswith(".png") for p in result["images"].values())


def test_brisque_model_files_missing(tmp_path, monkeypatch):
    """A broken BRISQUE installation (the package without its model files): BRISQUE n/a, PIQE scored."""
    brisque_module = importlib.import_module("seiscore.metrics.brisque")
    (tmp_path / "site" / "brisque").mkdir(parents=True)
    (tmp_path / "site" / "brisque" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    brisque_module._model_files.cache_clear()
    brisque_module.load_model.cache_clear()
    try:
        noisy = np.random.default_rng(3).normal(size=(16, 16, 6))
        stores = _store(tmp_path / "in.zarr", noisy), _store(tmp_path / "out.zarr", noisy / 2)
        m = quality_metrics(_amp(stores[0]), _amp(stores[1]))
    finally:
        brisque_module._model_files.cache_clear()
        brisque_module.load_model.cache_clear()
    assert m["brisque"]["reason"].startswith("BRISQUE model unavailable: BRISQUE model file missing: ")
    assert m["brisque"]["after"]["mean"] is None and m["piqe"]["after"]["mean"] is not None
    report = write_qc_report(stores[1], tmp_path / "r.html", against=stores[0], metrics=m, images={})
    assert "n/a (BRISQUE model unavailable" in report.read_text(encoding="utf-8")
