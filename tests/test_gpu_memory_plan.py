"""GPU memory planned like the CPU tiles (issue 17): the methods' device-memory models (``Method.gpu_memory``), the GPU
budget per task (``SEIS_GPU_MEMORY_BYTES``, else this machine's GPU, else unknown), TLSM's tiles cut to fit it, and
the pre-flight's report. All on the CPU: a GPU is either given by the setting or faked by patching
``seiscore.execution.resources.gpu_memory_total``."""

from __future__ import annotations

from pathlib import Path

import pytest

from seiscore.core.settings import GPU_MEMORY_FRACTION, get_settings, gpu_task_memory_budget
from seiscore.data.kinds import POSTSTACK3D
from seiscore.execution.blockwise.tiling import BudgetCut, BudgetError, TileConfig, plan_for_budget, plan_tiles
from seiscore.execution.preflight import preflight
from seiscore.methods.tlsm.method import TLSMMethod, TLSMSpec

GiB, MB = 2**30, 10**6
TLSM = TLSMMethod()


@pytest.fixture(autouse=True)
def no_gpu_here(monkeypatch):
    """No GPU budget unless a test sets one: SEIS_GPU_MEMORY_BYTES unset and no CUDA device on this machine (also
    on a GPU machine, so the plans compared here do not depend on where the tests run)."""
    monkeypatch.delenv("SEIS_GPU_MEMORY_BYTES", raising=False)
    monkeypatch.setattr("seiscore.execution.resources.gpu_memory_total", lambda: None)


# --- the budget ----------------------------------------------------------------------------------------------


def test_gpu_budget_from_the_setting_else_this_machines_gpu_else_unknown(monkeypatch):
    assert gpu_task_memory_budget() is None  # unknown: host memory only
    monkeypatch.setattr("seiscore.execution.resources.gpu_memory_total", lambda: 80 * GiB)
    assert gpu_task_memory_budget() == int(GPU_MEMORY_FRACTION * 80 * GiB)  # this machine's GPU
    monkeypatch.setenv("SEIS_GPU_MEMORY_BYTES", "40GB")  # the setting wins (the workers' GPUs)
    assert get_settings().gpu_memory_bytes == 40 * 10**9
    assert gpu_task_memory_budget() == int(GPU_MEMORY_FRACTION * 40 * 10**9)
    monkeypatch.setenv("SEIS_GPU_MEMORY_BYTES", "lots")
    with pytest.raises(ValueError, match="gpu_memory_bytes must be bytes or a size such as 4GB, got 'lots'"):
        get_settings()


def test_gpu_memory_total_needs_no_torch_without_a_driver(monkeypatch):
    import os
    import subprocess
    import sys

    import seiscore.execution.resources as resources

    monkeypatch.undo()  # the real function
    monkeypatch.setattr(resources, "gpu_available", lambda: False)
    assert resources.gpu_memory_total() is None
    if any(os.path.exists(node) for node in resources.NVIDIA_DRIVER_NODES):
        return  # a driver here: reading the GPU's memory imports torch
    code = (
        "import sys; from seiscore.core.settings import gpu_task_memory_budget as b; print(b(), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "SEIS_GPU_MEMORY_BYTES"}
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=True)
    assert out.stdout.split() == ["None", "False"]


# --- the methods' models -------------------------------------------------------------------------------------


def test_tlsm_gpu_memory_only_for_specs_that_may_run_torch_on_cuda():
    block = (48, 256, 256)  # store order: inline (tube), crossline, sample
    assert TLSM.gpu_memory(TLSMSpec(backend="numba"), block) is None
    assert TLSM.gpu_memory(TLSMSpec(device="cpu"), block) is None
    assert TLSM.gpu_memory(TLSMSpec(backend="torch", device="cpu"), block) is None
    auto, cuda = TLSM.gpu_memory(TLSMSpec(), block), TLSM.gpu_memory(TLSMSpec(device="cuda"), block)
    assert auto == cuda > 0
    # no threads factor: a GPU runs one task, each step one batched call
    assert TLSM.gpu_memory(TLSMSpec(threads_per_task=4), block) == auto
    # an upper bound by design: above the torch backend's CPU plan with one thread (same arrays, Gram stacks whole)
    assert auto > TLSM.peak_memory(TLSMSpec(backend="torch", device="cpu"), block)
    assert TLSM.gpu_memory(TLSMSpec(), block, itemsize=8) > auto
    assert TLSM.gpu_memory(TLSMSpec(), (96, 256, 256)) > auto


def test_tlsm_gpu_plan_bounds_the_torch_backends_own_allocations():
    """What the torch backend allocates through torch (the tensors it allocates on CUDA too), read on the CPU from
    torch's profiler, stays under the GPU plan."""
    pytest.importorskip("torch")
    from seiscore.methods.tlsm.memory import terms, tlsm_gpu_bytes, torch_allocated_peak

    try:
        measured = torch_allocated_peak((64, 64, 48))
    except (ImportError, AttributeError) as exc:  # pragma: no cover - the profiler's private API moved
        pytest.skip(f"torch profiler memory timeline unavailable: {exc}")
    t = terms(64, 64, 48)
    assert 15 * t["block"] < measured < tlsm_gpu_bytes((64, 64, 48))


@pytest.fixture(scope="module")
def ssb_model(tmp_path_factory) -> str:
    pytest.importorskip("torch")
    from seiscore.methods.ssb import SSBModelConfig, save_model
    from seiscore.methods.ssb.model import SSBModel

    return str(save_model(SSBModel(SSBModelConfig(patch=16)), tmp_path_factory.mktemp("ssb") / "model"))


def test_ssb_gpu_memory_is_weights_plus_a_chunk_of_patches(ssb_model, tmp_path):
    from seiscore.methods.ssb.method import SSB_GPU_WEIGHT_COPIES, SSBMethod, SSBSpec

    method = SSBMethod()
    spec = SSBSpec(model=ssb_model, params={"batch_size": 8})
    params = method.card(spec)["parameters"]
    one = method.gpu_memory(spec, (32, 40, 60))
    assert one > SSB_GPU_WEIGHT_COPIES * 4 * params > 0
    assert method.gpu_memory(spec, (32, 80, 120)) > one  # larger sections: more patches on the device at once
    assert method.gpu_memory(spec, (1, 40, 60)) < one  # fewer sections than one chunk
    assert (
        method.gpu_memory(
            spec.model_copy(update={"params": spec.params.model_copy(update={"batch_size": 64})}), (32, 40, 60)
        )
        > one
    )
    assert (
        method.gpu_memory(SSBSpec(model=ssb_model, params={"device": "cpu", "allow_cpu": True}), (32, 40, 60)) is None
    )
    # without a readable artifact (the pre-flight refuses it before): the default patch, no weights
    assert method.gpu_memory(SSBSpec(model=str(tmp_path / "missing")), (32, 40, 60)) > 0


# --- tiles -------------------------------------------------------------------------------------------------------

# TLSM's default tiles before GPU memory was planned (the code of commit b80b189): with no GPU budget known the
# plan must stay exactly this. (backend, shape, host budget) -> (tile, halo)
TODAY = {
    ("auto", (128, 512, 500), 64 * GiB): ((44, 256, None), (2, 16, 0)),
    ("auto", (128, 512, 500), GiB // 4): ((44, 171, 256), (2, 16, 32)),
    ("auto", (128, 512, 500), GiB // 16): ((22, 128, 128), (2, 16, 32)),
    ("auto", (100, 200, 400), GiB // 4): ((44, None, 256), (2, 0, 32)),
    ("auto", (600, 1200, 1500), GiB): ((44, 256, 750), (2, 16, 32)),
    ("auto", (600, 1200, 1500), GiB // 4): ((44, 172, 256), (2, 16, 32)),
    ("torch", (128, 512, 500), GiB // 4): ((44, 128, 256), (2, 16, 32)),
    ("torch", (600, 1200, 1500), GiB // 4): ((44, 128, 215), (2, 16, 32)),
    ("torch", (600, 1200, 1500), GiB // 16): ((16, 128, 128), (2, 16, 32)),
}


@pytest.mark.parametrize("backend, shape, budget", list(TODAY))
def test_without_a_gpu_budget_the_plan_is_todays(backend, shape, budget):
    cfg = TLSM.default_tiling(TLSMSpec(backend=backend), POSTSTACK3D, shape, budget=budget)
    assert (cfg.tile, cfg.halo) == TODAY[(backend, shape, budget)]


def _largest_block(cfg: TileConfig, shape) -> tuple[int, ...]:
    return plan_tiles(shape, cfg).largest_block()


def test_a_small_gpu_budget_plans_smaller_tiles_that_fit_it(monkeypatch):
    shape, roomy = (128, 512, 500), 64 * GiB  # host memory never binds here
    spec = TLSMSpec()
    host_only = TLSM.default_tiling(spec, POSTSTACK3D, shape, budget=roomy)
    assert TLSM.gpu_memory(spec, _largest_block(host_only, shape)) > 400 * MB  # ~1.1 GB: over the GPU budget below
    monkeypatch.setenv("SEIS_GPU_MEMORY_BYTES", "500MB")
    budget = gpu_task_memory_budget()
    assert budget == 400 * MB
    planned = TLSM.default_tiling(spec, POSTSTACK3D, shape, budget=roomy)
    block = _largest_block(planned, shape)
    assert planned != host_only and TLSM.gpu_memory(spec, block) <= budget
    assert block[1] * block[2] < (256 + 32) * 500  # the cross-section was cut (crossline, then samples)
    # the same through the explicit argument, and a CPU-only spec ignores the GPU budget
    assert TLSM.default_tiling(spec, POSTSTACK3D, shape, budget=roomy, gpu_budget=budget) == planned
    numba = TLSMSpec(backend="numba")
    assert TLSM.default_tiling(numba, POSTSTACK3D, shape, budget=roomy) == host_only
    # both budgets hold: a host budget tighter than the GPU's still decides
    tight = TLSM.default_tiling(spec, POSTSTACK3D, shape, budget=GiB // 16)
    assert tight == TLSM.default_tiling(numba, POSTSTACK3D, shape, budget=GiB // 16)


def test_plan_for_budget_names_the_gpu_budget_when_only_it_fails():
    cuts = [BudgetCut(axis=0, halo=2, min_core=16)]
    base = TileConfig(tile=(None, None), halo=(0, 0))
    host = lambda block: 10 * block[0] * block[1]  # noqa: E731
    gpu = lambda block: 100 * block[0] * block[1]  # noqa: E731
    cfg = plan_for_budget((128, 10), host, 10**6, base, cuts, gpu_peak=gpu, gpu_budget=40_000)
    assert cfg.tile == (32, None) and gpu(plan_tiles((128, 10), cfg).largest_block()) <= 40_000
    assert plan_for_budget((128, 10), host, 10**6, base, cuts) == base  # without the GPU: as before
    with pytest.raises(BudgetError, match="GPU memory budget of .*SEIS_GPU_MEMORY_BYTES"):
        plan_for_budget((128, 10), host, 10**6, base, cuts, gpu_peak=gpu, gpu_budget=1000)


# --- the pre-flight ----------------------------------------------------------------------------------------------


def _catalog(directory: Path, segy: Path, method: str = "{name: tlsm, params: {iterations: 2}}") -> Path:
    path = directory / "catalog.yaml"
    path.write_text(
        "surveys:\n"
        "  cube:\n"
        f"    source: {segy}\n"
        "    store: data/cube.zarr\n"
        "    output: data/cube_denoised.zarr\n"
        "    chunks: [8, 40, 60]\n"
        f"    method: {method}\n"
    )
    return path


@pytest.fixture(scope="module")
def segy(tmp_path_factory, write_synthetic_segy) -> Path:
    return write_synthetic_segy(tmp_path_factory.mktemp("gpu_plan"), (32, 40, 60))[0]


def test_preflight_reports_gpu_memory_and_the_budget(tmp_path, segy, monkeypatch, capsys):
    from seiscore.cli import main

    catalog = _catalog(tmp_path, segy)
    unknown = preflight("cube", catalog=catalog)
    assert unknown.gpu_memory_per_tile == TLSM.gpu_memory(unknown.spec, unknown.tiles.block)
    assert unknown.gpu_memory_budget is None and unknown.tiles.count == 1
    assert any("GPU memory  : ~" in line and "GPU budget unknown" in line for line in unknown.summary())

    monkeypatch.setenv("SEIS_GPU_MEMORY_BYTES", "20MB")  # 16 MB per task: the whole cube's ~16.6 MB does not fit
    plan = preflight("cube", catalog=catalog)
    assert plan.gpu_memory_budget == 16 * MB and plan.tiles.count > 1  # the tube axis was cut to fit
    assert plan.gpu_memory_per_tile <= plan.gpu_memory_budget < unknown.gpu_memory_per_tile
    assert not any("GPU" in n for n in plan.notes)
    assert main(["run", "cube", "--catalog", str(catalog), "--check"]) == 0
    text = capsys.readouterr().out
    assert f"GPU memory  : ~{plan.gpu_memory_per_tile / 2**20:.1f} MiB planned per tile on a GPU" in text
    assert "(GPU task budget 15.3 MiB)" in text

    monkeypatch.setenv("SEIS_GPU_MEMORY_BYTES", "2MB")  # below the smallest tile
    small = preflight("cube", catalog=catalog)
    note = next(n for n in small.notes if "GPU" in n)
    assert "of GPU memory, over the GPU task budget of 1.5 MiB (80% of SEIS_GPU_MEMORY_BYTES" in note
    assert "--param tiles=" in note
    tiles = {"tile": [16, None, None], "halo": [2, 0, 0]}
    given = preflight("cube", catalog=catalog, params={"tiles": tiles})
    assert "with the run's tiles given explicitly" in next(n for n in given.notes if "GPU" in n)

    cpu = preflight("cube", catalog=catalog, params={"backend": "numba"})  # never on a GPU: no GPU line
    assert cpu.gpu_memory_per_tile is None and cpu.gpu_memory_budget is None and cpu.tiles.count == 1
    assert not any("GPU" in line for line in cpu.summary())


def test_the_gpu_checks_tlsm_memory_line():
    from flows import bench_gpu

    row = {
        "shape": [200, 400, 100],
        "iterations": 20,
        "gpu_times_s": [0.2],
        "gpu_s": 0.2,
        "cpu_s": 4.0,
        "speedup": 20.0,
        "psnr_gpu": 45.3,
        "psnr_cpu": 45.3,
        "psnr_diff_db": 0.0,
        "rel_diff": 1e-6,
    }
    memory = {"gpu_memory_planned_bytes": 986 * 2**20, "gpu_max_allocated_bytes": 600 * 2**20}
    md = "\n".join(bench_gpu._md_tlsm({"float32": {**row, **memory}, "float64": row}))
    assert "GPU memory of the cube" in md and "float32 600 MiB of 986 MiB planned (0.61)" in md
    assert "float64" not in md.split("GPU memory of the cube")[1]  # no figures, nothing shown


def test_the_gpu_checks_device_memory_reading(monkeypatch):
    """The CUDA branch of the check's memory reading, with torch.cuda's counters faked (no GPU here)."""
    torch = pytest.importorskip("torch")
    from flows.bench_gpu_sections import DeviceMemory

    calls = []
    for name in ("synchronize", "empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, name=name: calls.append(name))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 100)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 700)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda *a: 900)
    with DeviceMemory("cuda") as memory:
        pass
    assert calls == ["synchronize", "empty_cache", "reset_peak_memory_stats", "synchronize"]
    assert memory.figures(1000) == {
        "gpu_memory_planned_bytes": 1000,
        "gpu_max_allocated_bytes": 600,  # above what was allocated when the block started
        "gpu_max_reserved_bytes": 900,
        "gpu_memory_measured_over_planned": 0.6,
    }
    with DeviceMemory("cpu") as memory:
        pass
    assert memory.figures(1000) == {"gpu_memory_planned_bytes": 1000}
