"""The measurements of the GPU device check (``python -m seiscore.bench gpu``, :mod:`flows.bench_gpu`).

Each ``*_section(emit, *, device, ...)`` runs in a child process of its own (the harness in
:mod:`flows.bench_gpu` gives it its time limit) and calls ``emit(key, value)`` as soon as a figure exists, so a
section stopped at its limit keeps what it measured. They reuse the benchmarks' own functions
(``seiscore.bench.cdiffsd`` / ``siren`` / ``drfwi``, ``flows.bench_pipeline``) at the sizes the module docstring
of :mod:`flows.bench_gpu` gives; ``--smoke`` passes toy sizes so that every one also runs on a CPU.
:class:`GPUSampler` samples the GPU's utilisation while the pipeline runs on it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

Emit = Callable[[str, Any], None]
NVIDIA_SMI = [
    "nvidia-smi",
    "--query-gpu=utilization.gpu,memory.used",
    "--format=csv,noheader,nounits",
    "-lms",
    "500",
]
ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------------------------
# GPU utilisation sampler
# --------------------------------------------------------------------------------------------------------------


def parse_smi_line(line: str) -> tuple[float, float] | None:
    """``"57, 1234"`` (utilisation %, memory used MiB) -> (57.0, 1234.0); None for a line that is not a sample
    (a header, ``[N/A]``, an error message)."""
    parts = [p.strip() for p in line.strip().split(",")]
    if len(parts) < 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


class GPUSampler:
    """Samples GPU utilisation and memory while a block runs: ``nvidia-smi ... -lms 500`` in a subprocess, read
    line by line by a thread; without nvidia-smi, ``torch.cuda.utilization`` / ``mem_get_info`` every 0.5 s
    (device-wide readings) when CUDA is there; else nothing, said in :meth:`summary`.

    ``cmd``: the sampling command (tests pass a fake one printing CSV lines)."""

    def __init__(self, cmd: list[str] | None = None, *, interval_s: float = 0.5, torch_fallback: bool = True):
        self.cmd = list(cmd or NVIDIA_SMI)
        self.interval_s, self.torch_fallback = interval_s, torch_fallback
        self.samples: list[tuple[float, float]] = []
        self.source: str | None = None
        self.note: str | None = None
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> GPUSampler:
        try:
            self._proc = subprocess.Popen(
                self.cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
            )
        except OSError as exc:
            self.note = f"{self.cmd[0]} not runnable ({type(exc).__name__}: {exc})"
            if self.torch_fallback and self._torch_ready():
                self.source = "torch.cuda"
                self._thread = threading.Thread(target=self._poll_torch, daemon=True)
                self._thread.start()
            return self
        self.source = " ".join(self.cmd[:1])
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            sample = parse_smi_line(line)
            if sample is not None:
                self.samples.append(sample)

    @staticmethod
    def _torch_ready() -> bool:
        try:
            import torch

            return bool(torch.cuda.is_available())
        except ImportError:
            return False

    def _poll_torch(self) -> None:
        import torch

        while not self._stop.is_set():
            try:
                free, total = torch.cuda.mem_get_info()
                util = float(torch.cuda.utilization())  # needs nvidia-ml-py (pynvml)
                self.samples.append((util, (total - free) / 2**20))
            except Exception as exc:  # noqa: BLE001 - a sampler must never break the measured run
                self.note = f"torch.cuda sampling stopped: {type(exc).__name__}: {exc}"
                return
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        """Mean / max utilisation (%) and max memory used (MiB) over the samples, with their source."""
        out: dict[str, Any] = {"source": self.source, "samples": len(self.samples)}
        if self.note:
            out["note"] = self.note
        if self.samples:
            util = [u for u, _ in self.samples]
            out.update(
                util_mean=round(statistics.fmean(util), 1),
                util_max=max(util),
                mem_used_mib_max=max(m for _, m in self.samples),
            )
        return out


# --------------------------------------------------------------------------------------------------------------
# Sections (each runs in its child process; ``emit(key, value)`` records a result as soon as it exists)
# --------------------------------------------------------------------------------------------------------------


def _sync(device: str) -> Callable[[], None]:
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def _timed(fn: Callable[[], Any], repeats: int, sync: Callable[[], None], warmup: int = 1) -> tuple[float, list, Any]:
    """(median seconds, all seconds, last result) of ``fn`` after ``warmup`` calls, synchronised around each."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(max(repeats, 1)):
        sync()
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), [round(t, 4) for t in times], result


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def machine_facts(gpu: bool) -> dict[str, Any]:
    """CPU count, library versions and, with ``gpu``, the CUDA device's properties and the driver."""
    import platform

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numba": _version("numba"),
        "dask": _version("dask"),
        "dask_cuda": _version("dask-cuda"),
    }
    try:
        import torch

        info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
        if gpu and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["gpu"] = {
                "name": props.name,
                "memory_gib": round(props.total_memory / 2**30, 1),
                "multiprocessors": props.multi_processor_count,
                "capability": f"{props.major}.{props.minor}",
                "count": torch.cuda.device_count(),
            }
            info["cudnn"] = torch.backends.cudnn.version()
    except ImportError:
        info["torch"] = None
    info["nvidia_smi"] = nvidia_smi_facts() if gpu else "not asked (no GPU)"
    return info


def nvidia_smi_facts() -> dict[str, Any] | str:
    """Driver version, name and memory of each GPU from nvidia-smi, or why not."""
    cmd = ["nvidia-smi", "--query-gpu=driver_version,name,memory.total", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi not runnable: {type(exc).__name__}"
    rows = [[p.strip() for p in ln.split(",")] for ln in done.stdout.splitlines() if ln.count(",") >= 2]
    if not rows:
        return f"nvidia-smi: {(done.stderr or done.stdout).strip()[:200]}"
    return {"driver": rows[0][0], "gpus": [{"name": r[1], "memory_mib": r[2]} for r in rows]}


def machine_section(emit: Emit, *, device: str) -> None:
    """Section 1: the machine."""
    emit("machine", machine_facts(gpu=str(device).startswith("cuda")))


class DeviceMemory:
    """Peak device memory of a block on a CUDA ``device``: ``torch.cuda.max_memory_allocated`` (what torch's
    tensors held at most, above what was allocated when the block started) and ``max_memory_reserved`` (what the
    caching allocator held); on another device, nothing (``figures()`` is empty)."""

    def __init__(self, device: str):
        self.device = str(device)
        self.cuda = self.device.startswith("cuda")
        self.base = 0

    def __enter__(self) -> DeviceMemory:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def figures(self, planned: int | None) -> dict[str, Any]:
        """``planned`` (a method's ``gpu_memory``) next to the measured peaks and their ratio (bytes)."""
        out: dict[str, Any] = {"gpu_memory_planned_bytes": planned}
        if self.cuda:
            import torch

            allocated = int(torch.cuda.max_memory_allocated(self.device)) - self.base
            out.update(
                gpu_max_allocated_bytes=allocated,
                gpu_max_reserved_bytes=int(torch.cuda.max_memory_reserved(self.device)),
                gpu_memory_measured_over_planned=round(allocated / planned, 3) if planned else None,
            )
        return out


def tlsm_section(emit: Emit, *, device: str, n_inline: int = 100, iterations: int = 20, repeats: int = 3) -> None:
    """Section 2: TLSM on the demo cube, torch on ``device`` against numba on the CPU, float32 then float64; on
    CUDA also the device memory of the torch runs against the plan of ``TLSMMethod.gpu_memory`` for the cube."""
    from seiscore.data.synth import SynthConfig, make_survey, to_canonical
    from seiscore.methods.tlsm import denoise
    from seiscore.methods.tlsm.method import TLSMMethod, TLSMSpec
    from seiscore.metrics import psnr

    sync = _sync(device)
    params = {"iterations": iterations}
    gpu_spec = TLSMSpec(backend="torch", device="cuda")  # default axes: the cube in store order (inline, xline, t)
    for dtype in (np.float32, np.float64):
        noisy, clean = make_survey(SynthConfig(n_inline=n_inline), dtype=dtype)
        y, x = np.ascontiguousarray(to_canonical(noisy)), to_canonical(clean)
        planned = TLSMMethod().gpu_memory(gpu_spec, noisy.shape, np.dtype(dtype).itemsize)
        cpu_s, cpu_times, cpu_out = _timed(
            lambda: denoise(y, params, preset="synthetic", backend="numba"), repeats, lambda: None
        )
        with DeviceMemory(device) as memory:
            gpu_s, gpu_times, gpu_out = _timed(
                lambda: denoise(y, params, preset="synthetic", backend="torch", device=device), repeats, sync
            )
        p_cpu, p_gpu = psnr(x, cpu_out), psnr(x, gpu_out)
        diff = np.linalg.norm((gpu_out - cpu_out).astype(np.float64)) / np.linalg.norm(cpu_out.astype(np.float64))
        emit(
            np.dtype(dtype).name,
            {
                "shape": list(y.shape),
                "iterations": iterations,
                "device": device,
                "gpu_s": round(gpu_s, 4),
                "gpu_times_s": gpu_times,
                "cpu_s": round(cpu_s, 4),
                "cpu_times_s": cpu_times,
                "speedup": round(cpu_s / gpu_s, 2),
                "psnr_in": round(psnr(x, y), 3),
                "psnr_gpu": round(p_gpu, 4),
                "psnr_cpu": round(p_cpu, 4),
                "psnr_diff_db": round(abs(p_gpu - p_cpu), 4),
                "rel_diff": float(diff),
                "out_dtype": str(gpu_out.dtype),
                **memory.figures(planned),
            },
        )


def _catalog(work: Path, entries: dict[str, dict[str, Any]]) -> Path:
    """A catalog of surveys reading ``data/bench.sgy``, one per entry (name -> method spec)."""
    import yaml

    surveys = {
        name: {
            "source": "data/bench.sgy",
            "store": f"data/{name}.zarr",
            "output": f"data/{name}_denoised.zarr",
            "method": spec,
        }
        for name, spec in entries.items()
    }
    path = work / "catalog.yaml"
    path.write_text(yaml.safe_dump({"surveys": surveys}, sort_keys=False))
    return path


def _gpu_cluster_run(emit: Emit, catalog: Path, device: str) -> tuple[dict[str, Any], str, float]:
    """The GPU run of the pipeline section, survey ``gpu_run``: the flow's own choice (dask-cuda's
    ``LocalCUDACluster``) when dask-cuda and CUDA are here; else - or when that run fails (its error is emitted
    as ``gpu_cuda_cluster_error``) - survey ``gpu_retry`` on an explicit one-worker ``LocalCluster`` advertising
    ``GPU=1``. Returns (flow result, cluster description, wall seconds of the run that finished)."""
    from flows._runtime import WORKER_PRELOAD, SeisDaskTaskRunner
    from flows.process_survey import process_survey, run_process_survey
    from seiscore.execution.resources import gpu_cluster_possible

    survey, why = "gpu_run", "dask-cuda not installed"
    if str(device).startswith("cuda") and gpu_cluster_possible():
        try:
            t0 = time.perf_counter()
            result = run_process_survey(survey, catalog=str(catalog))
            return result, "LocalCUDACluster (dask-cuda, GPU=1 per worker)", time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - one GPU run is worth a second try on a plain cluster
            emit("gpu_cuda_cluster_error", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            survey, why = "gpu_retry", "after the LocalCUDACluster run failed"
    runner = SeisDaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": 1,
            "threads_per_worker": 1,
            "processes": True,
            "resources": {"GPU": 1},
            "dashboard_address": None,
            "preload": [WORKER_PRELOAD],
        },
    )
    t0 = time.perf_counter()
    result = process_survey.with_options(task_runner=runner)(survey, catalog=str(catalog))
    return result, f"LocalCluster, 1 worker x 1 thread advertising GPU=1 ({why})", time.perf_counter() - t0


def _run_figures(result: dict[str, Any], samples: int, wall: float) -> dict[str, Any]:
    stages = result.get("stage_seconds") or {}
    m = result.get("metrics") or {}
    tiles_s = float(stages.get("tiles", 0.0))
    return {
        "wall_s": round(wall, 2),
        "samples_per_s": samples / wall,
        "tiles_s": round(tiles_s, 2),
        "tiles_samples_per_s": samples / tiles_s if tiles_s else None,
        "stages_s": stages,
        "task_seconds": m.get("task_seconds"),
        "tiles": m.get("tiles_total"),
        "tiles_per_task": m.get("tiles_per_task"),
    }


def _output_difference(a: str, b: str) -> float:
    """||a - b|| / ||b|| between two output stores' amplitudes (dask, threads)."""
    import dask

    from seiscore.io import open_survey

    xa, xb = open_survey(a)["amplitude"].data.astype("f8"), open_survey(b)["amplitude"].data.astype("f8")
    num, den = dask.compute(((xa - xb) ** 2).sum(), (xb**2).sum(), scheduler="threads")
    return float(np.sqrt(num / den))


def pipeline_section(
    emit: Emit, *, device: str, inlines: int, workdir: str, cpu_workers: int | None = None, keep: bool = False
) -> None:
    """Section 3: the survey through process-survey on the GPU cluster (sampled), then on the CPU cluster."""
    from flows.bench_pipeline import write_survey

    work = Path(workdir) / "pipeline"
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    os.environ.setdefault("SEIS_LINEAGE_DIR", str(work / "openlineage"))
    try:
        t0 = time.perf_counter()
        segy, shape = write_survey(work / "data", inlines)
        n = int(np.prod(shape))
        emit(
            "survey",
            {"shape": list(shape), "samples": n, "bytes": segy.stat().st_size, "generate_s": time.perf_counter() - t0},
        )
        axes = {"smooth": "crossline", "footprint": "sample", "tube": "inline"}
        base = {"name": "tlsm", "preset": "synthetic", "axes": axes}
        gpu_spec = {**base, "backend": "torch", "device": device}  # device cpu: --smoke, the same path on a CPU
        catalog = _catalog(work, {"gpu_run": gpu_spec, "gpu_retry": gpu_spec, "cpu_run": base})

        with GPUSampler() as sampler:
            result, cluster, wall = _gpu_cluster_run(emit, catalog, device)
        gpu_output = result["output"]
        emit(
            "gpu",
            {"spec": gpu_spec, "cluster": cluster, **_run_figures(result, n, wall), "gpu_util": sampler.summary()},
        )

        workers = int(cpu_workers or os.cpu_count() or 2)
        os.environ.update(SEIS_DASK_WORKERS=str(workers), SEIS_DASK_THREADS_PER_WORKER="1")
        from flows.process_survey import run_process_survey

        t0 = time.perf_counter()
        result = run_process_survey("cpu_run", catalog=str(catalog))
        wall = time.perf_counter() - t0
        emit(
            "cpu",
            {"spec": base, "cluster": f"LocalCluster, {workers} workers x 1 thread", **_run_figures(result, n, wall)},
        )
        emit(
            "output_rel_diff",
            _output_difference(gpu_output, result["output"]),
        )
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _ssb_small_config():
    """The model of ``configs/ssb_small.yaml`` (the SSB benchmark's), else the package's tiny default."""
    from seiscore.methods.ssb import SSBModelConfig, TrainConfig

    path = ROOT / "configs" / "ssb_small.yaml"
    return TrainConfig.from_yaml(path).model if path.exists() else SSBModelConfig()


def _ssb_poster_config(patch: int = 128):
    """Toward the poster's scale: a ViT-S/16-sized DINOv3 and a Swin V2-T-sized backbone (random weights)."""
    from seiscore.methods.ssb import BackboneConfig, ExpertConfig, SSBModelConfig

    dino = {
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 6,
        "intermediate_size": 1536,
        "patch_size": 16,
    }
    swin = {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 8, "patch_size": 4}
    return SSBModelConfig(
        patch=patch,
        dino=ExpertConfig(backbone=BackboneConfig(kind="dinov3", hf_config=dino)),
        swin=ExpertConfig(backbone=BackboneConfig(kind="swinv2", hf_config=swin)),
    )


def _ssb_measure(
    emit: Emit,
    cfg,
    *,
    device: str,
    sections: int = 64,
    section_shape=(200, 400),
    repeats: int = 3,
    train_steps: int = 30,
    batch_sizes=(16,),
    infer_batches=(32, 256),
) -> None:
    """Inference sections/s on ``sections`` synthetic inline sections of ``section_shape`` (crosslines x samples):
    each mode at the product's batch of patches (``infer_batches[0]``, SSBParams' default 32), the blend also at
    the larger ones; then training steps/s of the joint phase (L1 + TV loss, Adam) per batch size on random
    patches."""
    import torch

    from seiscore.data.synth import SynthConfig, make_survey
    from seiscore.methods.ssb import SSBModel, denoise
    from seiscore.methods.ssb.router import ssb_loss

    sync = _sync(device)
    torch.manual_seed(0)
    model = SSBModel(cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    emit("model", {"patch": cfg.patch, "parameters": int(params), "device": device})
    cube = make_survey(SynthConfig(n_inline=sections, n_crossline=section_shape[0], n_time=section_shape[1]))[0]
    rows = []
    runs = [(mode, infer_batches[0]) for mode in ("blend", "dino", "swin")] + [("blend", b) for b in infer_batches[1:]]
    for mode, batch in runs:
        med, times, _ = _timed(
            lambda: denoise(cube, model, axis=0, batch_size=batch, device=device, mode=mode), repeats, sync
        )
        rows.append(
            {
                "mode": mode,
                "batch": batch,
                "median_s": round(med, 4),
                "times_s": times,
                "sections_per_s": sections / med,
                "samples_per_s": cube.size / med,
            }
        )
        emit("inference", {"sections": sections, "section_shape": list(cube.shape[1:]), "rows": rows})
    model.set_trainable("joint")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    model.train()
    train_rows = []
    for bs in batch_sizes:
        gen = torch.Generator(device="cpu").manual_seed(bs)
        x = torch.randn(bs, 1, cfg.patch, cfg.patch, generator=gen).to(device)
        y = (0.5 * x).contiguous()

        def step() -> None:
            res = model(x, mode="blend")
            loss = ssb_loss(res.denoised, y, res.gate, model.cfg.router.tv_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()  # warm-up (autotuning, allocator)
        sync()
        t0 = time.perf_counter()
        for _ in range(train_steps):
            step()
        sync()
        sec = time.perf_counter() - t0
        train_rows.append(
            {
                "batch": bs,
                "patch": cfg.patch,
                "steps": train_steps,
                "steps_per_s": train_steps / sec,
                "pairs_per_s": bs * train_steps / sec,
            }
        )
        emit("training", train_rows)


def ssb_section(emit: Emit, *, device: str, **sizes: Any) -> None:
    """Section 4: the small random-initialised SSB (configs/ssb_small.yaml) on ``device``; ``sizes``: keyword
    arguments of :func:`_ssb_measure` (default 64 sections of 200 x 400, 30 steps at batch 16 and 128)."""
    _ssb_measure(emit, _ssb_small_config(), device=device, **{"batch_sizes": (16, 128), **sizes})


def ssb_large_section(emit: Emit, *, device: str, patch: int = 128, **sizes: Any) -> None:
    """Section 8 (optional): SSB toward the poster's scale (patch ``patch``); the poster trains 1,600 pairs for
    100 epochs. ``sizes`` as for :func:`ssb_section` (default 64 sections, 10 steps at batch 16)."""
    sizes = {"sections": 64, "repeats": 2, "train_steps": 10, "batch_sizes": (16,), **sizes}
    _ssb_measure(emit, _ssb_poster_config(patch), device=device, **sizes)


def cdiffsd_section(
    emit: Emit,
    *,
    device: str,
    direct_windows: int = 256,
    sampling_windows: int = 32,
    batch_size: int = 32,
    spec_T: int | None = None,
) -> None:
    """Section 5: cost per 3-C window of CDiffSD (``throughput``) per network and mode on ``device`` (and the
    spec network's direct mode on the CPU, for the ratio)."""
    from seiscore.bench.cdiffsd import QUICK
    from seiscore.methods.cdiffsd.config import CDiffSDConfig
    from seiscore.methods.cdiffsd.model import throughput

    spec = CDiffSDConfig() if spec_T is None else CDiffSDConfig(T=spec_T)
    nets = [
        (f"spec network (channels=1, T={spec.T})", spec),
        ("quick benchmark network (channels=3, T=20)", CDiffSDConfig(**QUICK["model"])),
    ]
    runs = [(label, cfg, mode, device) for label, cfg in nets for mode in ("direct", "sampling")]
    if device != "cpu":
        runs.append((nets[0][0], spec, "direct", "cpu"))
    rows = []
    for label, cfg, mode, dev in runs:
        n = direct_windows if mode == "direct" else sampling_windows
        n = min(n, 64) if dev == "cpu" and device != "cpu" else n
        r = throughput(cfg, windows=n, batch_size=min(batch_size, n), threads=None, mode=mode, device=dev)
        rows.append(
            {
                "network": label,
                "mode": mode,
                "device": dev,
                "windows": n,
                "ms_per_window": 1e3 * r["wall_s_per_window"],
                "windows_per_s": r["windows_per_s"],
            }
        )
        emit("cost", rows)


def siren_section(emit: Emit, *, device: str, batch: int = 256, shape=(70, 70), repeats: int = 3) -> None:
    """Section 6: the paper decoder (1.18 M parameters) on ``device``: decode and encode-step cost per model
    (``seiscore.bench.siren``), then decoding ``batch`` latents at once."""
    import torch

    from seiscore.bench.siren import _paper_cost
    from seiscore.methods.siren.config import AutoDecoderConfig
    from seiscore.methods.siren.model import VelocityAutoDecoder

    emit("paper_decoder", _paper_cost(device, tuple(shape)))
    config = AutoDecoderConfig(device=device)
    dec = VelocityAutoDecoder(config, generator=torch.Generator().manual_seed(0)).to(device).eval()
    z = (0.01 * np.random.default_rng(0).standard_normal((batch, config.latent_dim))).astype(np.float32)
    med, times, _ = _timed(lambda: dec.decode(z, shape=tuple(shape)), repeats, _sync(device))
    emit(
        "batch_decode",
        {"models": batch, "shape": list(shape), "median_s": med, "times_s": times, "models_per_s": batch / med},
    )


def drfwi_section(emit: Emit, *, device: str, quick: bool = False, iterations: int = 5) -> None:
    """Section 7: the DRFWI benchmark's survey (full: 150 x 460 cells, 40 shots; ``quick``: 50 x 153) observed
    on ``device``, then ``measure_cost`` (grid and s-denorm, ``iterations`` each) and the full run's estimate."""
    from seiscore.bench.drfwi import COST_FACTOR, FULL, MODES, QUICK, measure_cost, synthetic_survey
    from seiscore.data.marmousi import initial_model

    setup = QUICK if quick else FULL
    t0 = time.perf_counter()
    v_true, _, geometry, observed = synthetic_survey(setup, device=device)
    nz, nx = v_true.shape
    nt = geometry.nt
    emit(
        "survey",
        {
            "cells": [nz, nx],
            "spacing_m": setup.spacing,
            "shots": setup.n_shots,
            "nt": nt,
            "observe_s": time.perf_counter() - t0,
            "device": device,
        },
    )
    m0 = np.asarray(initial_model(v_true, kind="smooth", dx=setup.spacing), np.float32)
    costs = measure_cost(observed, geometry, m0, v_true, quick=quick, device=device, iterations=iterations)
    emit("cost", costs)
    # each mode priced at its measured kind of iteration, as the benchmark's own budget does (fit_iterations)
    per_mode = {
        m: COST_FACTOR.get(m, 1.0) * costs["grid" if m.startswith("grid") else "s-denorm"]["s_per_iter"] for m in MODES
    }
    hours = 2 * 2000 * sum(per_mode.values()) / 3600  # 2 initial models x every mode x 2000 iterations
    emit("full_run_estimate", {"iterations": 2000, "runs": 2 * len(MODES), "hours": round(hours, 2)})
