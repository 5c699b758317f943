"""QC metrics on Zarr survey stores, section images, the HTML report and ``seis qc``."""

import argparse
import json
import re

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from seiscore.qc import QCConfig, quality_metrics, section_images, write_qc_report

SHAPE = (24, 40, 64)


def _write_store(path, amp, lineage=None):
    il, xl = np.arange(100, 100 + amp.shape[0]), np.arange(500, 500 + amp.shape[1])
    ds = xr.Dataset(
        {"amplitude": (("inline", "crossline", "sample"), amp.astype(np.float32))},
        coords={"inline": il, "crossline": xl, "sample": ("sample", np.arange(amp.shape[2]) * 4.0, {"units": "ms"})},
    )
    if lineage is not None:
        ds.attrs["lineage"] = json.dumps(lineage)
    ds.chunk({"inline": 8, "crossline": 20, "sample": 16}).to_zarr(path, mode="w")
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qc")
    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.normal(size=SHAPE), (3, 3, 1.5))
    clean /= np.abs(clean).max()
    noisy = clean + 0.15 * rng.normal(size=SHAPE)
    denoised = ndimage.gaussian_filter(noisy, (1.5, 1.5, 0.8))
    return {
        "clean": _write_store(tmp / "clean.zarr", clean),
        "noisy": _write_store(tmp / "noisy.zarr", noisy),
        "denoised": _write_store(
            tmp / "den.zarr", denoised, lineage={"run_id": "r-42", "denoiser": "gauss", "params": {"sigma": 1.5}}
        ),
        "tmp": tmp,
    }


def _amp(path):
    return xr.open_zarr(path)["amplitude"]


def test_quality_metrics_is_json_and_scores_sampled_slices(stores):
    m = quality_metrics(_amp(stores["noisy"]), _amp(stores["denoised"]), _amp(stores["clean"]), max_slices=9)
    json.dumps(m, allow_nan=False)
    assert m["slices"] == np.round(np.linspace(0, 63, 9)).astype(int).tolist()
    assert m["slice_values"] == [4.0 * i for i in m["slices"]]
    assert "svm.txt" in m["brisque_model"]
    for key in ("brisque", "piqe"):
        assert len(m[key]["before"]["per_slice"]) == len(m[key]["after"]["per_slice"]) == 9
    assert 0 <= m["leakage"]["mean"] < 0.5 and len(m["leakage"]["per_slice"]) == 9
    assert m["psnr"]["after"]["mean"] > m["psnr"]["before"]["mean"]
    assert m["ssim"]["after"]["mean"] > m["ssim"]["before"]["mean"]
    assert m["snr"]["after"]["mean"] > m["snr"]["before"]["mean"]
    assert all(0 <= v <= 100 for w in ("before", "after") for v in m["piqe"][w]["per_slice"])
    assert len(m["band_energy"]) == QCConfig().n_bands
    hi = m["band_energy"][-1]["removed_fraction"]
    assert hi > m["band_energy"][0]["removed_fraction"]  # the smoother removed mostly high frequencies
    assert m["spectra"]["frequency_unit"] == "Hz" and m["spectra"]["frequency"][-1] == pytest.approx(125.0)


def test_all_slices_reference_metrics_follow_the_paper_convention(stores):
    from seiscore.metrics import psnr

    o, d, r = _amp(stores["noisy"]), _amp(stores["denoised"]), _amp(stores["clean"])
    m = quality_metrics(o, d, r, max_slices=None)
    assert m["psnr"]["after"]["mean"] == pytest.approx(psnr(r.values, d.values))


def test_quality_metrics_input_checks(stores):
    o = _amp(stores["noisy"])
    with pytest.raises(ValueError, match="no dimension 'time'"):
        quality_metrics(o, o, slice_dim="time")
    with pytest.raises(ValueError, match="shape"):
        quality_metrics(o, o.isel(inline=slice(0, 10)))
    with pytest.raises(ValueError, match="DataArray"):
        quality_metrics(o.values, o)


def test_section_images_share_one_scale(stores, tmp_path):
    o, d = _amp(stores["noisy"]), _amp(stores["denoised"])
    paths = section_images(o, d, tmp_path, inline=110, time_index=5)
    assert set(paths) == {f"{v}_{k}" for v in ("inline", "crossline", "time") for k in ("before", "after", "removed")}
    for p in paths.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="inline 7"):
        section_images(o, d, tmp_path, inline=7)


def test_report_is_self_contained_with_all_sections(stores):
    out = stores["tmp"] / "reports" / "den_qc.html"
    path = write_qc_report(stores["denoised"], out, against=stores["noisy"], max_slices=8)
    text = path.read_text()
    for section in ("summary", "sections", "leakage", "spectra", "metrics-per-slice", "lineage"):
        assert f'<section id="{section}">' in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text), "external resource in the report"
    assert "http://" not in text and "https://" not in text
    assert text.count("data:image/png;base64,") == 11  # 9 sections + leakage + spectra
    assert "r-42" in text and "svm.txt" in text  # lineage from the store attrs, BRISQUE model named
    rows = re.search(r'<section id="metrics-per-slice">(.*?)</section>', text, re.S).group(1)
    assert rows.count("<tr>") == 1 + 8 and '<tr class="mean">' in rows
    pngs = sorted(p.name for p in (out.parent / "den_qc_images").iterdir())
    assert "time_leakage.png" in pngs and "spectra.png" in pngs and len(pngs) == 11
    assert not list(out.parent.glob(".*.tmp"))


def test_report_without_original_and_with_given_metrics(stores):
    out = stores["tmp"] / "single.html"
    write_qc_report(stores["noisy"], out, max_slices=4, lineage={"note": "given lineage"})
    text = out.read_text()
    assert "given lineage" in text and "BRISQUE after" in text and "BRISQUE before" not in text
    m = quality_metrics(_amp(stores["noisy"]), _amp(stores["denoised"]), max_slices=3)
    out2 = write_qc_report(stores["denoised"], stores["tmp"] / "given.html", against=stores["noisy"], metrics=m)
    assert out2.read_text().count('<tr class="mean">') == 1


def test_report_embeds_given_section_images(stores, tmp_path):
    made = section_images(_amp(stores["noisy"]), _amp(stores["denoised"]), tmp_path / "given_images")
    out = tmp_path / "fresh" / "r.html"  # its folder does not exist yet
    write_qc_report(stores["denoised"], out, against=stores["noisy"], max_slices=4, images=made)
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 11
    # the sections were not drawn again: only the spectra and leakage maps are in the report's folder
    assert sorted(p.name for p in (out.parent / "r_images").iterdir()) == ["spectra.png", "time_leakage.png"]


def test_report_rejects_bad_stores(stores, tmp_path):
    with pytest.raises(FileNotFoundError):
        write_qc_report(tmp_path / "missing.zarr", tmp_path / "r.html")
    xr.Dataset({"other": (("a",), np.zeros(3))}).to_zarr(tmp_path / "bad.zarr")
    with pytest.raises(ValueError, match="no 'amplitude'"):
        write_qc_report(tmp_path / "bad.zarr", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_seis_qc_command(stores, capsys):
    from seiscore.cli import qc

    parser = argparse.ArgumentParser(prog="seis")
    qc.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["qc", str(stores["denoised"]), "--against", str(stores["noisy"]), "--max-slices", "4"])
    assert args.func(args) == 0
    out = qc.default_output(stores["denoised"])
    assert out.name == "den_qc.html" and out.exists()
    assert capsys.readouterr().out.strip().endswith("den_qc.html")
    with pytest.raises(FileExistsError, match="--force"):
        args.func(args)


def test_sampled_slices_and_spectra_traces_read_each_chunk_once(stores, monkeypatch):
    """When the sampled slices fit one batch, they and the spectra's traces are loaded in one pass: every
    amplitude chunk of each store is read once (on object storage each read is a request)."""
    import zarr.storage

    reads: dict[str, int] = {}
    get = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        if key.startswith("amplitude/c/"):
            reads[f"{self.root.name}/{key}"] = reads.get(f"{self.root.name}/{key}", 0) + 1
        return await get(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    m = quality_metrics(_amp(stores["noisy"]), _amp(stores["denoised"]), max_slices=4)
    n_chunks = 3 * 2 * 4  # SHAPE in chunks of (8, 20, 16)
    assert m["spectra"]["n_traces"] == 16 * 40 and len(m["slices"]) == 4
    assert len(reads) == 2 * n_chunks and set(reads.values()) == {1}
