"""The method contract and registry: built-in methods, availability, specs, a runtime method end to end on a real
store, ``seis methods``, and the one GPU rule (placement / require_gpu)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

from seiscore.execution.blockwise.tiling import TileConfig
from seiscore.execution.resources import GPURequiredError, placement, require_gpu
from seiscore.methods import registry
from seiscore.methods.base import BlockwiseSpec, Method, MethodConfigError
from seiscore.methods.registry import (
    MethodUnavailableError,
    UnknownMethodError,
    get_method,
    parse_spec,
    register_method,
    resolve_spec,
)
from seiscore.methods.ssb.method import SSBSpec
from seiscore.methods.tlsm.method import TLSMSpec

REPO = Path(__file__).resolve().parent.parent


class MedianParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(3, ge=1)
    dim: str = "sample"


class MedianSpec(BlockwiseSpec):
    name: Literal["median_test"] = "median_test"
    params: MedianParams = Field(default_factory=MedianParams)


class MedianMethod(Method):
    """A median filter along one dim: blockwise, CPU, tiles of 2 inlines with a 1-inline halo."""

    name = "median_test"
    spec_model = MedianSpec
    data_kinds = ("poststack3d",)
    mode = "blockwise"

    def default_tiling(self, spec, kind, shape):
        return TileConfig(tile=(2, None, None), halo=(1, 0, 0))

    def build(self, spec, kind):
        from scipy.ndimage import median_filter

        axis = kind.axis(spec.params.dim)
        size = tuple(spec.params.size if a == axis else 1 for a in range(kind.ndim))
        return lambda block: median_filter(block, size=size, mode="nearest")


class MissingSpec(BlockwiseSpec):
    name: Literal["needs_missing_test"] = "needs_missing_test"


class MissingMethod(Method):
    name = "needs_missing_test"
    spec_model = MissingSpec
    data_kinds = ("poststack3d",)
    mode = "blockwise"
    requires = ("no_such_module_xyz",)
    extra = "xyz"


@pytest.fixture()
def registered():
    register_method(MedianMethod)
    register_method(MissingMethod)
    yield
    for name in ("median_test", "needs_missing_test"):
        registry._runtime.pop(name, None)


def test_registry_lists_the_builtin_methods_and_refuses_unknown_names():
    assert {"tlsm", "ssb"} <= set(registry.names())
    rows = {r.name: r for r in registry.method_table()}
    assert rows["tlsm"].data_kinds == ("poststack3d",) and rows["tlsm"].mode == "blockwise"
    assert rows["tlsm"].resources == {} and rows["ssb"].resources == {"GPU": 1} and rows["ssb"].extra == "ssb"
    assert rows["tlsm"].origin == "built-in"
    with pytest.raises(
        UnknownMethodError, match="unknown method 'tslm'; did you mean 'tlsm'.*available: .*ssb, .*tlsm"
    ):
        get_method("tslm")
    with pytest.raises(UnknownMethodError, match="available"):
        parse_spec({"name": "bm3d"})
    with pytest.raises(MethodConfigError, match="needs a 'name'"):
        parse_spec({"model": "x"})


def test_a_method_with_a_missing_module_is_unavailable_with_its_extra(registered):
    row = {r.name: r for r in registry.method_table()}["needs_missing_test"]
    assert not row.available and row.needs == ("no_such_module_xyz",) and row.install == "pip install 'seiscore[xyz]'"
    assert "needs_missing_test" in registry.names() and "needs_missing_test" not in registry.names(available_only=True)
    with pytest.raises(MethodUnavailableError, match="needs no_such_module_xyz.*pip install 'seiscore\\[xyz\\]'"):
        get_method("needs_missing_test")
    assert isinstance(parse_spec({"name": "needs_missing_test"}), MissingSpec)  # configurable, refused at run time


def test_seis_methods_prints_the_table_and_json(registered, capsys):
    from seiscore.cli import main

    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "data", "kinds", "mode", "resources", "available", "origin"]
    row = {line.split()[0]: line for line in lines[1:]}
    assert row["ssb"].split()[1:4] == ["poststack3d", "blockwise", "GPU=1"]
    assert row["tlsm"].split()[1:5] == ["poststack3d", "blockwise", "-", "yes"]
    assert "needs no_such_module_xyz: pip install 'seiscore[xyz]'" in row["needs_missing_test"]
    assert "registered at run time" in row["median_test"]
    assert main(["methods", "--json"]) == 0
    table = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert table["ssb"]["resources"] == {"GPU": 1} and table["needs_missing_test"]["available"] is False


def test_listing_and_parsing_import_neither_torch_nor_numba():
    code = (
        "import sys\n"
        "from seiscore.methods import registry\n"
        "registry.method_table(); registry.parse_spec({'name': 'ssb', 'model': 'm'})\n"
        "registry.parse_spec({'name': 'tlsm', 'params': {'tau': 0.3}})\n"
        "import seiscore.execution.blockwise.jobs, seiscore.execution.resources\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numba', 'transformers', 'prefect'}))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, env=os.environ
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_spec_union_parses_serialises_and_survives_a_tile_job_round_trip():
    from seiscore.execution.blockwise.jobs import TileJob, plan_job_tiles

    axes = {"smooth": "crossline", "footprint": "inline", "tube": "sample"}
    tlsm = parse_spec({"name": "tlsm", "preset": "penobscot", "params": {"iterations": 5}, "axes": axes})
    ssb = parse_spec({"name": "ssb", "model": "/m", "section_dim": "crossline", "params": {"allow_cpu": True}})
    assert isinstance(tlsm, TLSMSpec) and isinstance(ssb, SSBSpec)
    assert tlsm.params.model_dump() == {"iterations": 5}  # overrides only: the preset fills the rest
    assert get_method("tlsm").parameters(tlsm)["tau"] == 0.1 and get_method("tlsm").parameters(tlsm)["iterations"] == 5
    for spec in (tlsm, ssb):
        assert parse_spec(json.loads(spec.model_dump_json())) == spec
        plan = plan_job_tiles((64, 40, 50), (8, 40, 50), spec)
        job = TileJob(input_store="in", output_store="out", plan=plan, spec=spec)
        back = TileJob.model_validate_json(job.model_dump_json())
        assert back == job and type(back.spec) is type(spec) and back.kind == "poststack3d"
    assert json.loads(job.model_dump_json())["spec"] == {  # SerializeAsAny: every SSB field, not the base's
        "name": "ssb",
        "params": {"batch_size": 32, "device": None, "allow_cpu": True, "mode": "blend", "overlap": None},
        "scale": "minmax",
        "tiles": None,
        "threads_per_task": 1,
        "model": "/m",
        "section_dim": "crossline",
    }
    # default tiling: TLSM 44 + halo 2 along its tube axis; SSB stacks of 32 sections across section_dim
    assert plan_job_tiles((100, 40, 50), (8, 40, 50), tlsm).halo == (0, 0, 2)  # tube = sample
    assert plan_job_tiles((100, 40, 50), (8, 40, 50), ssb).edges[1] == (0, 32, 40)


def test_resolve_spec_applies_overrides_and_a_new_method_starts_from_its_defaults():
    base = parse_spec({"name": "tlsm", "preset": "penobscot", "params": {"iterations": 5}, "scale": "none"})
    same = resolve_spec(
        base, None, {"tau": 0.3, "axes": {"smooth": "inline", "footprint": "sample", "tube": "crossline"}}
    )
    assert (
        same.preset == "penobscot"
        and same.scale == "none"
        and same.params.model_dump() == {"iterations": 5, "tau": 0.3}
    )
    assert same.axes.tube == "crossline"
    other = resolve_spec(base, "ssb", {"model": "/m", "allow_cpu": True})
    assert isinstance(other, SSBSpec) and other.scale == "minmax" and other.params.allow_cpu is True
    with pytest.raises(MethodConfigError, match="SSB needs a model artifact folder"):
        resolve_spec(base, "ssb", None)
    with pytest.raises(MethodConfigError, match="unknown TLSM parameter 'tua'; did you mean 'tau'"):
        resolve_spec(base, None, {"tua": 1})
    with pytest.raises(MethodConfigError, match="unknown SSB parameter 'preset'"):  # nothing TLSM-specific kept
        resolve_spec(base, "ssb", {"model": "/m", "preset": "synthetic"})


def test_a_runtime_registered_method_runs_through_denoise_tile_and_write_tile(
    registered, tmp_path, write_synthetic_segy
):
    from scipy.ndimage import median_filter

    from seiscore import io
    from seiscore.execution.blockwise.jobs import TileJob, denoise_tile, write_tile
    from seiscore.execution.pipeline import make_job, prepare_output

    segy = write_synthetic_segy(tmp_path, (6, 10, 30))[0]
    store = io.ingest(segy, tmp_path / "in.zarr", chunks=(2, 10, 30))
    spec = resolve_spec({"name": "median_test"}, None, {"size": 5})
    job = make_job(store, str(tmp_path / "out.zarr"), spec)
    assert job.plan.n_tiles == 3 and job.plan.halo == (1, 0, 0)  # the method's default tiling
    job = TileJob.model_validate_json(job.model_dump_json())
    prepare_output(job, "run")
    keys = [t.key for t in job.plan.tiles()]
    for key in keys:
        denoise_tile(job, key)
    for key in keys:
        write_tile(job, key)
    out = io.open_survey(job.output_store, require_complete=False)["amplitude"].values
    amp = io.open_survey(store)["amplitude"].values
    c, h = job.scale
    scaled = (amp - np.float32(c)) / np.float32(h)
    expected = median_filter(scaled, size=(1, 1, 5), mode="nearest") * np.float32(h) + np.float32(c)
    assert np.allclose(out, expected, atol=1e-5 * h)  # a filter along samples: tiles over inlines change nothing


def test_placement_is_the_one_gpu_rule():
    tlsm, ssb = get_method("tlsm"), get_method("ssb")
    tlsm_spec = TLSMSpec()
    ssb_spec = SSBSpec(model="m")
    cpu_ok = SSBSpec(model="m", params={"allow_cpu": True})
    local, external = (
        {"type": "LocalCluster"},
        {"type": "external", "n_workers": 2, "scheduler": "tcp://127.0.0.1:8786"},
    )
    assert placement(tlsm, tlsm_spec, local, has_gpu=False) == (None, None)
    assert placement(tlsm, tlsm_spec, external, has_gpu=True) == (None, None)
    assert placement(ssb, ssb_spec, external, has_gpu=True) == ({"GPU": 1}, None)
    assert placement(ssb, ssb_spec, local, has_gpu=True) == ({"GPU": 1}, None)
    with pytest.raises(GPURequiredError, match="local cluster has none; pass the parameter allow_cpu=true"):
        placement(ssb, ssb_spec, local, has_gpu=False)
    with pytest.raises(GPURequiredError, match="GPU=1; none of the 2 workers at tcp://127.0.0.1:8786"):
        placement(ssb, cpu_ok, external, has_gpu=False)  # allow_cpu never applies to an external cluster
    resources, note = placement(ssb, cpu_ok, local, has_gpu=False)
    assert resources is None and "run on the CPU workers (allow_cpu=true)" in note


def test_require_gpu_picks_the_device_on_the_worker():
    from seiscore.execution.resources import gpu_available

    assert require_gpu(False, "SSB", requested="cuda:1") == "cuda:1"
    assert require_gpu(True, "SSB", requested="cpu") == "cpu"
    with pytest.raises(GPURequiredError, match="SSB needs a GPU and none is available; pass allow_cpu=True"):
        require_gpu(False, "SSB", requested="cpu")
    assert require_gpu(True, "SSB") == ("cuda" if gpu_available() else "cpu")
    if not gpu_available():
        with pytest.raises(GPURequiredError, match="needs a GPU"):
            require_gpu(False, "SSB")


def test_entry_point_plugins_are_listed_and_a_broken_one_is_reported(tmp_path):
    """Real ``importlib.metadata`` entry points of a distribution on the path (a dist-info folder)."""
    (tmp_path / "plug_test_pkg.py").write_text(
        "from typing import Literal\n"
        "from seiscore.methods.base import BlockwiseSpec, Method\n"
        "class PlugSpec(BlockwiseSpec):\n"
        "    name: Literal['plug_test'] = 'plug_test'\n"
        "class Plug(Method):\n"
        "    name = 'plug_test'\n"
        "    spec_model = PlugSpec\n"
        "    data_kinds = ('poststack3d',)\n"
        "    mode = 'blockwise'\n"
        "    def build(self, spec, kind):\n"
        "        return lambda block: block\n"
    )
    dist = tmp_path / "plug_test_pkg-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-test-pkg\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text(
        "[seiscore.methods]\nplug_test = plug_test_pkg:Plug\nbroken_test = plug_test_pkg:Nope\n"
        "tlsm = plug_test_pkg:Plug\n"
    )
    code = (
        "import json\n"
        "from seiscore.methods import registry\n"
        "rows = {r.name: [r.available, r.origin, r.description] for r in registry.method_table()}\n"
        "spec = registry.parse_spec({'name': 'plug_test'})\n"
        "print(json.dumps({'rows': rows, 'spec': type(spec).__name__, 'tlsm': registry.method_class('tlsm').__name__}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["rows"]["plug_test"][:2] == [True, "plug-test-pkg 1.2"] and out["spec"] == "PlugSpec"
    assert out["rows"]["broken_test"][0] is False and "failed to load" in out["rows"]["broken_test"][2]
    assert out["tlsm"] == "TLSMMethod"  # a plug-in never shadows a built-in method
