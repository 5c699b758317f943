"""TLSM's PyTorch backend: the same output as the numba backend, its device rule and contract, and the method
spec's backend / device fields with the placement rule on a (fake) GPU worker.

Torch is installed in CI; this module imports it only inside tests (``denoise(..., backend="torch")`` does)."""

from __future__ import annotations

import numpy as np
import pytest

from seiscore.data.kinds import POSTSTACK3D
from seiscore.data.synth import SynthConfig, make_survey, to_canonical
from seiscore.execution.resources import gpu_available
from seiscore.methods.base import MethodConfigError
from seiscore.methods.registry import parse_spec
from seiscore.methods.tlsm import PRESETS, denoise
from seiscore.methods.tlsm import method as tlsm_method
from seiscore.methods.tlsm.method import TLSMMethod, choose_backend
from seiscore.metrics import psnr

TOL = {np.float32: 1e-5, np.float64: 1e-10}


def _cube(n1: int, n2: int, n3: int, dtype=np.float64, seed: int = 1) -> np.ndarray:
    """A canonical (n1, n2, n3) synthetic cube (smooth = crossline, footprint = time, tube = inline)."""
    noisy, _ = make_survey(SynthConfig(n_inline=n3, n_crossline=n1, n_time=n2, seed=seed), dtype=dtype)
    return np.ascontiguousarray(to_canonical(noisy))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("boundary", ["demo", "periodic"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_torch_backend_equals_numba_backend(preset, boundary, dtype):
    y = _cube(12, 20, 9, dtype)
    params = {"boundary": boundary}
    ref = denoise(y, params, preset=preset)
    got = denoise(y, params, preset=preset, backend="torch", device="cpu")
    assert got.dtype == dtype and got.shape == y.shape
    assert _rel(got, ref) < TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(10, 18, 8), (18, 10, 7), (16, 16, 6)])  # thin / wide slices, even / odd tube
def test_torch_backend_shapes(shape, dtype):
    y = _cube(*shape, dtype=dtype, seed=4)
    ref = denoise(y, {"iterations": 8})
    got = denoise(y, {"iterations": 8}, backend="torch", device="cpu")
    assert _rel(got, ref) < TOL[dtype]


def test_torch_backend_denoises():
    noisy, clean = make_survey(SynthConfig(n_inline=16, n_crossline=24, n_time=48, seed=3), dtype=np.float32)
    y, x = to_canonical(noisy), to_canonical(clean)
    out = denoise(y, backend="torch", device="cpu")
    assert psnr(x, out) - psnr(x, y) > 8.0


def test_torch_svd_route_equals_gram_route():
    y = _cube(10, 14, 7)
    gram = denoise(y, {"iterations": 5}, backend="torch", device="cpu")
    svd = denoise(y, {"iterations": 5}, backend="torch", device="cpu", route="svd")
    assert _rel(svd, gram) < 1e-10


def test_caller_array_untouched_and_deterministic():
    base = _cube(10, 14, 6, np.float32).transpose(2, 0, 1).copy()  # (n3, n1, n2): the solver's own layout,
    y = base.transpose(1, 2, 0)  # so its internal copy of y could be a view of the caller's memory
    before = y.copy()
    a = denoise(y, {"iterations": 4}, backend="torch", device="cpu", workers=2)
    b = denoise(y, {"iterations": 4}, backend="torch", device="cpu", workers=2)
    one = denoise(y, {"iterations": 4}, backend="torch", device="cpu", workers=1)
    np.testing.assert_array_equal(y, before)
    np.testing.assert_array_equal(a, b)
    assert _rel(one, a) < 1e-5  # another thread count batches the slices differently: last bits may move
    assert not np.shares_memory(a, y)


def test_callback_and_threads_restored():
    import torch

    y = _cube(8, 12, 6)
    seen_numba, seen_torch = [], []
    denoise(y, {"iterations": 3}, callback=lambda it, c: seen_numba.append((it, c)))
    threads = torch.get_num_threads()
    denoise(y, {"iterations": 3}, backend="torch", device="cpu", workers=1, callback=lambda *a: seen_torch.append(a))
    assert torch.get_num_threads() == threads
    assert [it for it, _ in seen_torch] == [1, 2, 3]
    np.testing.assert_allclose([c for _, c in seen_torch], [c for _, c in seen_numba], rtol=1e-8)


def test_device_errors_are_one_line():
    y = _cube(6, 8, 4)
    if not gpu_available():
        with pytest.raises(ValueError, match="no CUDA device is available") as err:
            denoise(y, backend="torch", device="cuda")
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown TLSM device 'tpu'"):
        denoise(y, backend="torch", device="tpu")
    with pytest.raises(ValueError, match="numba backend runs on the CPU only"):
        denoise(y, device="cuda")
    with pytest.raises(ValueError, match="unknown TLSM backend 'jax'"):
        denoise(y, backend="jax")
    with pytest.raises(ValueError, match="unknown spectral route"):
        denoise(y, backend="torch", device="cpu", route="qr")


# --- the method spec: backend / device, resources, the choice on the worker -----------------------------------


def test_spec_backend_and_device_validation():
    spec = parse_spec({"name": "tlsm"})
    assert (spec.backend, spec.device) == ("auto", "auto")
    assert parse_spec({"name": "tlsm", "backend": "torch", "device": "cuda"}).device == "cuda"
    with pytest.raises(MethodConfigError, match="backend 'numba' runs on the CPU only"):
        parse_spec({"name": "tlsm", "backend": "numba", "device": "cuda"})
    with pytest.raises(MethodConfigError, match="backend"):
        parse_spec({"name": "tlsm", "backend": "jax"})
    with pytest.raises(MethodConfigError, match="device"):
        parse_spec({"name": "tlsm", "device": "gpu"})


@pytest.mark.parametrize("device, resources", [("auto", {}), ("cpu", {}), ("cuda", {"GPU": 1})])
def test_resources_follow_the_device(device, resources):
    assert TLSMMethod().resources(parse_spec({"name": "tlsm", "device": device})) == resources


def test_cuda_on_a_local_cluster_without_gpu_says_how_to_run_on_cpu():
    from seiscore.execution.resources import GPURequiredError, placement

    spec = parse_spec({"name": "tlsm", "device": "cuda"})
    with pytest.raises(GPURequiredError) as err:
        placement(TLSMMethod(), spec, {"type": "local", "n_workers": 2}, has_gpu=False)
    assert "device to auto" in str(err.value) and "allow_cpu" not in str(err.value)
    assert placement(TLSMMethod(), parse_spec({"name": "tlsm"}), {"type": "local"}, has_gpu=False) == (None, None)


def test_torch_on_cpu_plans_more_memory():
    method, block = TLSMMethod(), (48, 256, 256)
    numba = method.peak_memory(parse_spec({"name": "tlsm"}), block)
    torch_cpu = method.peak_memory(parse_spec({"name": "tlsm", "backend": "torch"}), block)
    torch_cuda = method.peak_memory(parse_spec({"name": "tlsm", "backend": "torch", "device": "cuda"}), block)
    assert torch_cpu > 1.4 * numba and torch_cuda == numba
    # measured RSS high-water of the torch backend on this block: 273 MB (1 thread; seiscore.methods.tlsm.memory)
    assert torch_cpu > 273 * 2**20 > numba
    two = parse_spec({"name": "tlsm", "backend": "torch", "threads_per_task": 2})
    assert method.peak_memory(two, block) > 318 * 2**20  # measured with 2 threads


def test_build_picks_numba_without_gpu(monkeypatch):
    monkeypatch.setattr(tlsm_method, "_cuda_visible", lambda: False)
    spec = parse_spec({"name": "tlsm", "params": {"iterations": 3}})
    run = TLSMMethod().build(spec, POSTSTACK3D)
    assert run.placement is None  # chosen where the callable runs, not when it is built
    block = make_survey(SynthConfig(n_inline=6, n_crossline=10, n_time=12), dtype=np.float32)[0]
    out = run(block)
    assert run.placement == {"backend": "numba", "device": "cpu"}
    torch_spec = parse_spec({"name": "tlsm", "params": {"iterations": 3}, "backend": "torch"})
    torch_run = TLSMMethod().build(torch_spec, POSTSTACK3D)
    assert torch_run(block).shape == out.shape and torch_run.placement == {"backend": "torch", "device": "cpu"}
    assert _rel(torch_run(block), out) < 1e-5


def test_no_cuda_probe_imports_torch_without_a_driver():
    import subprocess
    import sys

    code = (
        "import sys, seiscore.methods.tlsm.method as m, seiscore.execution.resources as r\n"
        "r.NVIDIA_DRIVER_NODES = ('/nonexistent/nvidia',)\n"
        "spec = m.TLSMSpec()\n"
        "assert m.choose_backend(spec) == ('numba', 'cpu'), m.choose_backend(spec)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _picks_on_worker(resources: dict, *specs) -> list:
    """:func:`choose_backend` of each spec, run as a task on an in-process Dask worker advertising ``resources``."""
    from distributed import Client, LocalCluster

    kw = dict(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0", resources=resources)
    with LocalCluster(**kw) as cluster, Client(cluster) as client:
        return client.gather([client.submit(choose_backend, s, pure=False) for s in specs])


def test_auto_placement_uses_the_gpu_only_on_a_gpu_worker(monkeypatch):
    auto, torch_spec = parse_spec({"name": "tlsm"}), parse_spec({"name": "tlsm", "backend": "torch"})
    monkeypatch.setattr(tlsm_method, "_cuda_visible", lambda: False)
    assert choose_backend(auto) == ("numba", "cpu")
    assert choose_backend(torch_spec) == ("torch", "cpu")
    monkeypatch.setattr(tlsm_method, "_cuda_visible", lambda: True)  # the process sees CUDA (faked)
    assert choose_backend(auto) == ("torch", "cuda")  # outside a worker: CUDA alone decides
    assert choose_backend(parse_spec({"name": "tlsm", "device": "cpu"})) == ("numba", "cpu")
    assert choose_backend(parse_spec({"name": "tlsm", "backend": "numba"})) == ("numba", "cpu")
    assert _picks_on_worker({"GPU": 1}, auto, torch_spec) == [("torch", "cuda"), ("torch", "cuda")]
    assert _picks_on_worker({}, auto, torch_spec) == [("numba", "cpu"), ("torch", "cpu")]
