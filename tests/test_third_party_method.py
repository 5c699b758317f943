"""Proof that the core is open: a third-party method, built into a real wheel and installed beside (not into)
the product, is found through the ``seiscore.methods`` entry-point group and runs end to end - ``seis methods``,
``seis run --method median`` and the ``process-survey`` flow - with lineage and QC, no product code changed.

The package ``seis_median`` is written here: a blockwise CPU median filter over one axis of ``poststack3d`` data,
tiles cut along another axis with a halo (``median``), and the same filter as a ``per_item`` method over batches of
inlines (``trace-median``). Its wheel is built with pip (setuptools, no isolation) and installed
with ``pip install --target`` into a temporary folder that only the test's ``PYTHONPATH`` / ``sys.path`` names.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_pipeline_deployments import _enum

REPO = Path(__file__).resolve().parents[1]
SHAPE = (24, 40, 60)

PACKAGE = '''
"""A third-party seiscore method: a median filter over one axis (blockwise, CPU)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from seiscore.execution.blockwise.tiling import TileConfig
from seiscore.execution.per_item import PerItemSpec
from seiscore.methods.base import BlockwiseSpec, Method

TILE = 8


class MedianParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(3, ge=1, description="window length along the axis")
    axis: str = Field("sample", description="dim the window runs along")


class MedianSpec(BlockwiseSpec):
    name: Literal["median"] = "median"
    params: MedianParams = Field(default_factory=MedianParams)


class MedianMethod(Method):
    name = "median"
    description = "median filter over one axis"
    spec_model = MedianSpec
    data_kinds = ("poststack3d",)
    mode = "blockwise"

    def default_tiling(self, spec, kind, shape):
        axis = kind.axis(spec.params.axis)
        cut = next(kind.axis(d) for d in kind.tileable if kind.axis(d) != axis)
        halo = spec.params.size // 2
        return TileConfig(
            tile=tuple(TILE if a == cut else None for a in range(len(shape))),
            halo=tuple(halo if a == cut else 0 for a in range(len(shape))),
        )

    def build(self, spec, kind):
        from scipy.ndimage import median_filter

        axis = kind.axis(spec.params.axis)
        size = tuple(spec.params.size if a == axis else 1 for a in range(kind.ndim))
        return lambda block: median_filter(block, size=size, mode="nearest")


class TraceMedianSpec(PerItemSpec):
    name: Literal["trace-median"] = "trace-median"
    item_dim: str = "inline"
    batch_size: int = 8
    params: MedianParams = Field(default_factory=MedianParams)


class TraceMedianMethod(Method):
    """The same filter as a per_item method: each batch of inlines is one call."""

    name = "trace-median"
    description = "median filter over one axis, batches of items"
    spec_model = TraceMedianSpec
    data_kinds = ("poststack3d",)
    mode = "per_item"

    def build(self, spec, kind):
        from scipy.ndimage import median_filter

        axis = kind.axis(spec.params.axis)  # a batch keeps the kind's dim order
        size = tuple(spec.params.size if a == axis else 1 for a in range(kind.ndim))
        return lambda batch: median_filter(batch, size=size, mode="nearest")
'''

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "seis-median"
version = "0.1.0"
description = "median filter method for seiscore"

[project.entry-points."seiscore.methods"]
median = "seis_median:MedianMethod"
trace-median = "seis_median:TraceMedianMethod"

[tool.setuptools]
packages = ["seis_median"]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The wheel of ``seis_median``, built and installed into a folder of its own (not the venv)."""
    d = tmp_path_factory.mktemp("plugin")
    pkg = d / "src"
    (pkg / "seis_median").mkdir(parents=True)
    (pkg / "seis_median" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    (pkg / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(d / "dist"), str(pkg)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (d / "dist").glob("seis_median-0.1.0-*.whl")
    site = d / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    assert (site / "seis_median-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


@pytest.fixture(scope="module")
def survey(tmp_path_factory, write_synthetic_segy):
    d = tmp_path_factory.mktemp("median_survey")
    noisy_path, clean_path, noisy, _ = write_synthetic_segy(d / "segy", SHAPE, seed=5)
    catalog = d / "catalog.yaml"
    catalog.write_text(
        "surveys:\n"
        "  small:\n"
        f"    source: {noisy_path}\n"
        "    store: data/stores/small.zarr\n"
        "    output: data/stores/small_median.zarr\n"
        f"    reference: {clean_path}\n"
        "    chunks: [8, 40, 60]\n"
        "    method:\n"
        "      name: median\n"
        "      params: {size: 3}\n"
    )
    return {"catalog": catalog, "noisy": noisy, "output": d / "data" / "stores" / "small_median.zarr"}


def _env(site: Path, tmp_path: Path, prefect_harness: str) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "PREFECT_API_URL": prefect_harness,
        "SEIS_LINEAGE_DIR": str(tmp_path / "ol"),
        "SEIS_CODE_VERSION": "test",
        "SEIS_DASK_WORKERS": "2",
        "SEIS_DASK_THREADS_PER_WORKER": "1",
    }


def _seis(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from seiscore.cli import main; sys.exit(main())", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


def _expected(noisy: np.ndarray, size: int) -> np.ndarray:
    """The median over samples of the whole survey (tiles cut inlines only, so they change nothing)."""
    from scipy.ndimage import median_filter

    return median_filter(noisy, size=(1, 1, size), mode="nearest")


def _check_output(output: Path, noisy: np.ndarray, size: int, tiles: list | None = (3, 1, 1)) -> dict:
    from seiscore import io
    from seiscore.core.lineage import read_lineage

    assert io.is_complete(output)
    out = xr.open_zarr(str(output), consolidated=False)["amplitude"].values
    np.testing.assert_allclose(out, _expected(noisy, size), rtol=1e-5, atol=1e-5 * float(np.abs(noisy).max()))
    rec = read_lineage(output)
    assert rec.status == "completed"
    assert rec.denoiser["name"].endswith("median") and rec.denoiser["params"]["size"] == size
    if tiles is not None:
        assert rec.tile_grid["grid"] == list(tiles) and rec.tile_grid["halo"] == [size // 2, 0, 0]
    assert Path(rec.metrics["qc_report"]).is_file()
    return rec.model_dump()


def test_seis_methods_lists_the_installed_plugin(site, tmp_path, prefect_harness):
    done = _seis(["methods"], _env(site, tmp_path, prefect_harness))
    assert done.returncode == 0, done.stderr
    line = next(row for row in done.stdout.splitlines() if row.split()[:1] == ["median"])
    assert "poststack3d" in line and "blockwise" in line
    assert "seis-median 0.1.0" in done.stdout or "seis_median" in done.stdout  # listed from its distribution


def test_seis_run_with_the_plugin_method(site, survey, tmp_path, prefect_harness):
    done = _seis(
        ["run", "small", "--catalog", str(survey["catalog"]), "--method", "median"],
        _env(site, tmp_path, prefect_harness),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "small: done" in done.stdout
    _check_output(survey["output"], survey["noisy"], size=3)


def test_process_survey_flow_with_the_plugin_method(site, survey, tmp_path, monkeypatch, prefect_harness):
    """The flow in this process, imported after the plug-in is on the path (as a served deployment imports it):
    ``median`` is one of the choices of its run form, and a run with another size recomputes the survey."""
    from prefect.utilities.callables import parameter_schema

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")
    monkeypatch.setenv("SEIS_DASK_WORKERS", "2")
    monkeypatch.setenv("SEIS_DASK_THREADS_PER_WORKER", "1")
    monkeypatch.delitem(sys.modules, "flows.process_survey", raising=False)  # a fresh import sees the plug-in
    module = importlib.import_module("flows.process_survey")

    schema = parameter_schema(module.process_survey).model_dump()
    assert {"median", "trace-median", "tlsm", "ssb"} <= set(_enum(schema, "method"))
    result = module.run_process_survey("small", catalog=str(survey["catalog"]), method="median", params={"size": 5})
    assert result["status"] == "completed" and not result["skipped"] and result["method"] == "median"
    _check_output(survey["output"], survey["noisy"], size=5)

    # The same filter as a per_item plug-in: the flow dispatches on the mode, batches of 8 inlines, no flow edit.
    result = module.run_process_survey("small", catalog=str(survey["catalog"]), method="trace-median")
    assert result["status"] == "completed" and result["method"] == "trace-median" and result["tiles_computed"] == 3
    rec = _check_output(survey["output"], survey["noisy"], size=3, tiles=None)
    assert rec["tile_grid"]["item_dim"] == "inline" and rec["tile_grid"]["batch"] == 8
