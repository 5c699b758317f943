"""Benchmark ``gpu``: the one prepared device check of the GPU paths (issue 17), under a fixed time budget.

    python -m seiscore.bench gpu [--dry-run] [--budget-minutes 8] [--workdir DIR] [--name gpu]
        [--only tlsm,pipeline,...] [--smoke] [--device cuda|cpu] [--pipeline-inlines N] [--keep]

A GPU machine is lent for minutes, so this script is prepared and tested on CPU and run there once. It writes
``benchmarks/results/<name>.json`` and ``.md`` (the markdown pastes into BENCHMARKS.md as it is), rewritten
after EVERY section, so a run stopped by its time limit still leaves the sections it finished. Sections, in
order (each in a child process of its own with its own time limit: a hung or crashed CUDA call costs its
section, not the report; an error is recorded as one line in its section, and a section that times out keeps
what it had measured):

1. ``machine``: GPU name, memory, multiprocessors (``torch.cuda.get_device_properties``), driver
   (``nvidia-smi``), torch / CUDA / cuDNN versions, CPU count, dask-cuda;
2. ``tlsm``: TLSM on the demo cube (100 x 200 x 400, ``SynthConfig`` defaults, 20 iterations), float32 and
   float64: ``denoise(y, backend="torch", device="cuda")`` against the numba CPU backend in the same run
   (medians of 3 after a warm-up, ``torch.cuda.synchronize`` around each), the ratio, PSNR of both against
   the clean cube and their difference; targets <= 0.3 s float32 on the GPU, >= 15x the CPU path, PSNR equal
   within 0.01 dB;
3. ``pipeline``: a synthetic survey (``inlines`` x 200 x 400, as ``python -m seiscore.bench pipeline`` writes
   it) through the ``process-survey`` flow twice: TLSM with ``backend: torch, device: cuda`` (resources
   ``GPU=1``: the flow's local cluster is dask-cuda's ``LocalCUDACluster``; without dask-cuda, or if that run
   fails, a one-worker ``LocalCluster`` advertising ``GPU=1``), GPU utilisation sampled by
   ``nvidia-smi -lms 500`` meanwhile, then the default
   TLSM spec on a CPU ``LocalCluster`` of one 1-thread worker per core; samples/s end to end and of the tiles
   stage, their ratios (target >= 10x), and how far apart the two outputs are;
4. ``ssb``: the small random-initialised SSB of ``configs/ssb_small.yaml``: inference sections/s per mode and
   training steps/s (Adam on the joint phase's parameters);
5. ``cdiffsd``: cost per 3-C window (``seiscore.methods.cdiffsd.model.throughput``) in ``direct`` and
   ``sampling`` modes, for the spec's network (channels=1, T=300) and the quick benchmark's (channels=3, T=20);
6. ``siren``: the paper decoder's decode and encode-step cost (``seiscore.bench.siren``) and batch decoding;
7. ``drfwi``: the full benchmark's survey (150 x 460 cells, 40 shots) observed on the device, then seconds per
   iteration of grid FWI and s-denorm (``seiscore.bench.drfwi.measure_cost``), and the full run extrapolated;
8. ``ssb_large`` (optional): an SSB toward the poster's scale (ViT-S/16-sized DINOv3, Swin V2-T-sized, patch
   128), only when the budget still has room; otherwise marked ``skipped: budget``.

Budget: before each section the time left (``--budget-minutes`` minus the time spent, minus a reserve for the
report) is checked against what the section needs at least; a section that does not fit is skipped and marked,
and one that runs gets at most the smaller of its cap and the time left. ``--dry-run`` (or no CUDA device)
runs nothing heavy: every section is written marked "no GPU", the machine section filled from CPU facts; it
never raises on a CPU machine. ``--smoke`` runs every section at toy sizes on whatever device there is (CPU
included): it tests the code paths here, its figures mean nothing.

This module is the harness (plan, budget, child processes, report); the measurements are in
:mod:`flows.bench_gpu_sections`. It runs the process-survey flow, so it lives on the orchestration side;
``seiscore.bench`` finds it through the ``seiscore.benchmarks`` entry point ``gpu = "flows.bench_gpu:main"``
(also ``python -m flows.bench_gpu``). How to run it on a fresh GPU machine: ``benchmarks/gpu_check.sh`` and
docs/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from seiscore.bench.common import md_table, write_results

TARGETS = {"tlsm_f32_gpu_s": 0.3, "tlsm_speedup": 15.0, "tlsm_psnr_db": 0.01, "pipeline_ratio": 10.0}
REPORT_RESERVE_S = 10.0  # kept back from the budget for the report and the child processes' exits
# Pipeline survey: 2400 x 200 x 400 = 192 M samples (0.77 GB SEG-Y). The paper-shape pipeline ran 1.05 M samples/s
# on 2 cores (benchmarks/results/pipeline.md: tiles 84 %, QC 11 % of 244 s); on 16 cores the tiles scale ~8x and
# QC does not: about 25 s of tiles + 20 s of QC + start-up, ~1 min end to end on the CPU cluster.
PIPELINE_INLINES = 2400


# --------------------------------------------------------------------------------------------------------------
# Budget
# --------------------------------------------------------------------------------------------------------------


class Budget:
    """Wall-clock budget of the whole check: ``slot(need, cap)`` is the time limit a section gets, or None.

    With ``left = total - spent - reserve``: a section runs only when ``left >= need`` and then gets
    ``min(cap, left)`` seconds. ``clock`` is injectable (tests)."""

    def __init__(
        self, total_s: float, reserve_s: float = REPORT_RESERVE_S, clock: Callable[[], float] = time.monotonic
    ):
        self.total_s, self.reserve_s, self.clock = float(total_s), float(reserve_s), clock
        self.start = clock()

    def spent(self) -> float:
        """Seconds since the budget started."""
        return self.clock() - self.start

    def left(self) -> float:
        """Seconds a section may still use (the reserve excluded; may be negative)."""
        return self.total_s - self.spent() - self.reserve_s

    def slot(self, need_s: float, cap_s: float) -> float | None:
        """The time limit of a section needing at least ``need_s`` and at most ``cap_s``; None: skip it."""
        left = self.left()
        if left < need_s:
            return None
        return min(float(cap_s), left)


@dataclass
class Section:
    """One section of the check: what runs (``module:function`` with keyword arguments) and its time needs."""

    name: str
    title: str
    target: str
    need_s: float
    cap_s: float
    kwargs: dict[str, Any] = field(default_factory=dict)
    optional: bool = False


# --------------------------------------------------------------------------------------------------------------
# Child processes: one per section
# --------------------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


class Emitter:
    """The results of a section as they come: ``emit(key, value)`` stores ``value`` and rewrites the JSON file
    atomically, so the parent reads what was measured even when it stops the section at its time limit."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.results: dict[str, Any] = {}

    def __call__(self, key: str, value: Any) -> None:
        """Record ``value`` under ``key`` and write the file."""
        self.results[key] = value
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.results, indent=1, default=_jsonable))
        os.replace(tmp, self.path)


def _load_target(target: str) -> Callable[..., Any]:
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def child_main(argv: list[str]) -> int:
    """Entry of a section's child process: ``TARGET KWARGS_JSON OUT``; the error, if any, goes to OUT as one line."""
    target, kwargs, out = argv[0], json.loads(argv[1]), argv[2]
    emit = Emitter(out)
    try:
        _load_target(target)(emit, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - recorded in the section; the traceback goes to its log
        import traceback

        traceback.print_exc()
        emit("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:500] if str(exc) else type(exc).__name__)
        return 1
    return 0


def _stop_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the child's process group (its Dask workers, its sampler), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _log_tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-400:]


def run_child(target: str, kwargs: dict[str, Any], timeout_s: float, out: Path, log: Path) -> dict[str, Any]:
    """Run ``target(emit, **kwargs)`` in a child process (own session) for at most ``timeout_s`` seconds.

    Returns ``{"status": "ok" | "error" | "timeout", "seconds", "results", ["error"], "log"}``; ``results``
    holds whatever the child emitted, also when it timed out or failed."""
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-c",
        "import sys; from flows.bench_gpu import child_main; sys.exit(child_main(sys.argv[1:]))",
        target,
        json.dumps(kwargs),
        str(out),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            rc: int | None = proc.wait(timeout=max(timeout_s, 0.1))
        except subprocess.TimeoutExpired:
            rc = None
            _stop_group(proc)
        else:
            _stop_group(proc, grace_s=2.0)  # anything the child left running in its group
    seconds = round(time.monotonic() - t0, 1)
    try:
        results = json.loads(out.read_text())
    except (OSError, ValueError):
        results = {}
    error = results.pop("error", None)
    entry: dict[str, Any] = {"seconds": seconds, "results": results, "log": str(log)}
    if rc is None:
        entry.update(status="timeout", error=f"stopped at its time limit of {timeout_s:.0f} s")
    elif error or rc != 0:
        entry.update(status="error", error=error or f"exited with code {rc}: {_log_tail(log)}")
    else:
        entry["status"] = "ok"
    return entry


# --------------------------------------------------------------------------------------------------------------
# Plan, report, main
# --------------------------------------------------------------------------------------------------------------

SECTION_TITLES = {
    "machine": "Machine",
    "tlsm": "TLSM demo cube: torch on the GPU vs numba on the CPU",
    "pipeline": "GPU-tile pipeline: process-survey with TLSM on the GPU vs the CPU cluster",
    "ssb": "SSB (small random-initialised configuration)",
    "cdiffsd": "CDiffSD cost per 3-C window",
    "siren": "SIREN paper decoder",
    "drfwi": "DRFWI cost per iteration (full benchmark survey)",
    "ssb_large": "SSB toward the poster's scale (optional)",
}


# The sections in order: (name, least seconds worth starting it, most seconds it may take). The caps are about
# twice the expected time on the H200 machine (16 cores); the expected total is ~6 of the 8 minutes.
PLAN = (
    ("machine", 5, 45),
    ("tlsm", 30, 120),
    ("pipeline", 90, 210),
    ("ssb", 20, 60),
    ("cdiffsd", 20, 60),
    ("siren", 15, 45),
    ("drfwi", 30, 75),
    ("ssb_large", 40, 60),
)
OPTIONAL = {"ssb_large"}
# --smoke: toy sizes that run every section's code on a CPU in minutes
SMOKE_SIZES: dict[str, dict[str, Any]] = {
    "tlsm": {"n_inline": 8, "iterations": 2, "repeats": 1},
    "pipeline": {"inlines": 24},
    "ssb": {"sections": 2, "section_shape": [64, 96], "repeats": 1, "train_steps": 2, "batch_sizes": [4]},
    "cdiffsd": {"direct_windows": 2, "sampling_windows": 1, "batch_size": 1, "spec_T": 2},
    "siren": {"batch": 4, "repeats": 1},
    "drfwi": {"quick": True, "iterations": 2},
    "ssb_large": {"sections": 2, "section_shape": [128, 128], "repeats": 1, "train_steps": 1, "batch_sizes": [2]},
}


def plan_sections(device: str, *, smoke: bool, workdir: str, pipeline_inlines: int | None, keep: bool) -> list[Section]:
    """The sections of :data:`PLAN` with their arguments (``smoke``: :data:`SMOKE_SIZES` and 4x the caps)."""
    sections = []
    for name, need, cap in PLAN:
        kwargs: dict[str, Any] = {"device": device, **(SMOKE_SIZES.get(name, {}) if smoke else {})}
        if name == "pipeline":
            kwargs.update(
                workdir=workdir, keep=keep, inlines=pipeline_inlines or kwargs.get("inlines", PIPELINE_INLINES)
            )
        target = f"flows.bench_gpu_sections:{name}_section"
        cap = 4 * cap if smoke else cap  # toy sizes on a (shared) CPU: room to run; the figures do not matter
        sections.append(Section(name, SECTION_TITLES[name], target, need, cap, kwargs, optional=name in OPTIONAL))
    return sections


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.{nd}f}".rstrip("0").rstrip(".")
    return str(v)


def _yes(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def _md_machine(r: dict) -> list[str]:
    m = r.get("machine") or {}
    gpu = m.get("gpu") or {}
    smi = m.get("nvidia_smi")
    driver = smi.get("driver") if isinstance(smi, dict) else smi
    rows = [
        ["GPU", f"{gpu.get('name', '-')} x {gpu.get('count', '-')}" if gpu else "none"],
        [
            "GPU memory (GiB) / SMs / capability",
            f"{gpu.get('memory_gib', '-')} / {gpu.get('multiprocessors', '-')} / {gpu.get('capability', '-')}"
            if gpu
            else "-",
        ],
        ["driver (nvidia-smi)", driver or "-"],
        ["torch / CUDA / cuDNN", f"{m.get('torch', '-')} / {m.get('torch_cuda', '-')} / {m.get('cudnn', '-')}"],
        ["CPUs", m.get("cpu_count", "-")],
        [
            "python / numba / dask / dask-cuda",
            " / ".join(str(m.get(k) or "-") for k in ("python", "numba", "dask"))
            + f" / {m.get('dask_cuda') or 'not installed'}",
        ],
    ]
    return [md_table(["what", "value"], rows)]


def _md_tlsm(r: dict) -> list[str]:
    rows = []
    for dt in ("float32", "float64"):
        v = r.get(dt)
        if not v:
            continue
        rows.append(
            [
                dt,
                _f(v["gpu_s"]),
                _f(v["cpu_s"]),
                f"{_f(v['speedup'])}x",
                _f(v["psnr_gpu"], 4),
                _f(v["psnr_cpu"], 4),
                _f(v["psnr_diff_db"]),
                _f(v["rel_diff"]),
                _yes(v["gpu_s"] <= TARGETS["tlsm_f32_gpu_s"]) if dt == "float32" else "-",
                _yes(v["speedup"] >= TARGETS["tlsm_speedup"]),
                _yes(v["psnr_diff_db"] <= TARGETS["tlsm_psnr_db"]),
            ]
        )
    first = next((r[dt] for dt in ("float32", "float64") if r.get(dt)), None)
    n1, n2, n3 = first["shape"] if first else ("?", "?", "?")  # canonical (crossline, sample, inline)
    reps = len(first["gpu_times_s"]) if first else "?"
    head = (
        f"Demo cube {n3} x {n1} x {n2} (F = 0.2, sigma = 0.01), {first['iterations'] if first else '?'} iterations; "
        f"medians of {reps} after a warm-up. Targets: "
        f"<= {TARGETS['tlsm_f32_gpu_s']} s float32 on the GPU, >= {TARGETS['tlsm_speedup']:g}x the CPU path, "
        f"PSNR equal within {TARGETS['tlsm_psnr_db']} dB."
    )
    cols = ["dtype", "GPU s", "CPU numba s", "speedup", "PSNR GPU", "PSNR CPU", "ΔPSNR dB", "rel. diff"]
    out = [head, md_table([*cols, "<= 0.3 s", ">= 15x", "ΔPSNR ok"], rows)] if rows else [head]
    memory = [
        f"{dt} {_mib(v['gpu_max_allocated_bytes'])} of {_mib(v['gpu_memory_planned_bytes'])} planned "
        f"({_f(v['gpu_max_allocated_bytes'] / v['gpu_memory_planned_bytes'], 2)})"
        + (f", {_mib(v['gpu_max_reserved_bytes'])} reserved" if v.get("gpu_max_reserved_bytes") else "")
        for dt in ("float32", "float64")
        if (v := r.get(dt)) and v.get("gpu_max_allocated_bytes") is not None and v.get("gpu_memory_planned_bytes")
    ]
    if memory:
        out.append(
            "GPU memory of the cube, torch.cuda.max_memory_allocated against TLSMMethod.gpu_memory's plan "
            "(an upper bound by design, unmeasured before this run): " + "; ".join(memory) + "."
        )
    return out


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def _md_pipeline(r: dict) -> list[str]:
    s = r.get("survey") or {}
    out = [
        f"Survey {' x '.join(map(str, s.get('shape', [])))} float32 ({_f(s.get('bytes', 0) / 1e9)} GB SEG-Y, "
        f"written in {_f(s.get('generate_s'))} s), default TLSM tiles, no SEG-Y export."
    ]
    rows = []
    for key in ("gpu", "cpu"):
        v = r.get(key)
        if not v:
            continue
        extra = {k: v2 for k, v2 in (v.get("spec") or {}).items() if k in ("backend", "device")}
        label = f"{key.upper()} run: TLSM " + (", ".join(f"{k} {v2}" for k, v2 in extra.items()) or "default spec")
        util = v.get("gpu_util") or {}
        rows.append(
            [
                label,
                v.get("cluster"),
                _f(v.get("wall_s")),
                _f(v["samples_per_s"] / 1e6),
                _f(v.get("tiles_s")),
                _f((v.get("tiles_samples_per_s") or 0) / 1e6),
                f"{_f(util.get('util_mean'))} / {_f(util.get('util_max'))}" if util.get("samples") else "-",
                _f(util.get("mem_used_mib_max")) if util.get("samples") else "-",
            ]
        )
    if rows:
        out.append(
            md_table(
                [
                    "run",
                    "cluster",
                    "wall s",
                    "M samples/s",
                    "tiles stage s",
                    "tiles M samples/s",
                    "GPU util % mean / max",
                    "GPU MiB max",
                ],
                rows,
            )
        )
    g, c = r.get("gpu"), r.get("cpu")
    if g and c:
        e2e = g["samples_per_s"] / c["samples_per_s"]
        tiles = (g.get("tiles_samples_per_s") or 0) / (c.get("tiles_samples_per_s") or float("inf"))
        out.append(
            f"GPU / CPU: **end to end {e2e:.2f}x**, **tiles stage {tiles:.2f}x** "
            f"(target >= {TARGETS['pipeline_ratio']:g}x: {_yes(tiles >= TARGETS['pipeline_ratio'])} on the tiles "
            "stage; ingest, QC and lineage run on the CPU in both runs). "
            f"Outputs differ by {_f(r.get('output_rel_diff'))} (relative L2). "
            f"Stages (s): GPU {g.get('stages_s')}; CPU {c.get('stages_s')}."
        )
        out.append(
            "The GPU run goes first, so it also pays this process's one-off start-up (Prefect's temporary server, "
            "first imports) in its end-to-end time; each run starts its own cluster, whose workers load the method "
            "(and, on the GPU, create the CUDA context) during the tiles stage."
        )
        util = g.get("gpu_util") or {}
        if not util.get("samples"):
            out.append(f"GPU utilisation: not sampled ({util.get('note', 'no sampler')}).")
    return out


def _md_ssb(r: dict) -> list[str]:
    m = r.get("model") or {}
    out = [
        f"Patch {m.get('patch', '-')}, {m.get('parameters', '-')} parameters, random weights, "
        f"device {m.get('device', '-')}."
    ]
    inf = r.get("inference") or {}
    if inf.get("rows"):
        out.append(
            f"Inference on {inf['sections']} sections of {' x '.join(map(str, inf['section_shape']))} "
            "(fp16 autocast on CUDA):"
        )
        out.append(
            md_table(
                ["mode", "patches / batch", "median s", "sections/s", "samples/s"],
                [
                    [x["mode"], x.get("batch", "-"), _f(x["median_s"]), _f(x["sections_per_s"])]
                    + [f"{x['samples_per_s']:.3g}"]
                    for x in inf["rows"]
                ],
            )
        )
    if r.get("training"):
        out.append("Training steps of the joint phase (L1 + TV, Adam, fp32):")
        out.append(
            md_table(
                ["batch", "patch", "steps", "steps/s", "pairs/s"],
                [
                    [x["batch"], x["patch"], x["steps"], _f(x["steps_per_s"]), _f(x["pairs_per_s"])]
                    for x in r["training"]
                ],
            )
        )
        best = max(r["training"], key=lambda x: x["pairs_per_s"])
        out.append(
            f"At {_f(best['pairs_per_s'])} pairs/s one epoch of the poster's 1,600 pairs takes "
            f"{1600 / best['pairs_per_s']:.1f} s "
            "(one phase; the poster trains 100 epochs)."
        )
    return out


def _md_cdiffsd(r: dict) -> list[str]:
    rows = [
        [x["network"], x["mode"], x["device"], x["windows"], _f(x["ms_per_window"]), _f(x["windows_per_s"])]
        for x in r.get("cost", [])
    ]
    return [md_table(["network", "mode", "device", "windows", "ms / window", "windows / s"], rows)] if rows else []


def _md_siren(r: dict) -> list[str]:
    out = []
    p = r.get("paper_decoder")
    if p:
        out.append(
            md_table(
                ["parameters", "decode s / model", "encode s / step / model", "encode s / model (1000 steps)"],
                [
                    [
                        p["parameters"],
                        _f(p["decode_s_per_model"]),
                        _f(p["encode_s_per_step_per_model"]),
                        _f(p["encode_s_per_model_1000_steps"]),
                    ]
                ],
            )
        )
    b = r.get("batch_decode")
    if b:
        out.append(
            f"Batch decode: {b['models']} models of {' x '.join(map(str, b['shape']))} in {_f(b['median_s'])} s: "
            f"**{b['models_per_s']:.0f} models/s**."
        )
    return out


def _md_drfwi(r: dict) -> list[str]:
    out = []
    s = r.get("survey")
    if s:
        out.append(
            f"Model {s['cells'][0]} x {s['cells'][1]} cells at {s['spacing_m']:g} m, {s['shots']} shots, "
            f"nt {s['nt']}; observed "
            f"(8th order) on {s['device']} in {_f(s['observe_s'])} s."
        )
    c = r.get("cost")
    if c:
        rows = [
            [m, _f(v["s_per_iter"]), _f(v["propagation_s"]), _f(v["network_s"]), _f(v["fixed_s"])] for m, v in c.items()
        ]
        cols = ["mode", "s / iteration (median, 1st left out)", "propagation s / it (mean)", "network s / it (mean)"]
        out.append(md_table([*cols, "fixed s / run"], rows))
    e = r.get("full_run_estimate")
    if e:
        out.append(
            f"Full benchmark ({e['runs']} runs x {e['iterations']} iterations) extrapolated: "
            f"**{e['hours']} h** on this device."
        )
    return out


RENDER = {
    "machine": _md_machine,
    "tlsm": _md_tlsm,
    "pipeline": _md_pipeline,
    "ssb": _md_ssb,
    "ssb_large": _md_ssb,
    "cdiffsd": _md_cdiffsd,
    "siren": _md_siren,
    "drfwi": _md_drfwi,
}


def _status_line(entry: dict) -> str:
    status = entry.get("status", "?")
    secs = f" ({entry['seconds']:.0f} s)" if entry.get("seconds") is not None else ""
    if status == "ok":
        return f"Status: ok{secs}."
    if status == "timeout":
        return f"Status: **timeout**{secs}: {entry.get('error')}; the figures below are what it finished."
    if status == "error":
        return f"Status: **error**{secs}: `{entry.get('error')}`" + (
            " (partial figures below)." if entry.get("results") else "."
        )
    return f"Status: **{status}**" + (f": {entry['reason']}." if entry.get("reason") else ".")


def markdown(report: dict) -> str:
    """The report as markdown: a header, then per section its status line and tables (whatever it finished)."""
    mode = report.get("mode")
    head = {
        "gpu": "GPU device check (`python -m seiscore.bench gpu`)",
        "dry-run": "GPU device check: dry run (no GPU; nothing measured)",
        "smoke": "GPU device check: smoke run (toy sizes; figures meaningless)",
    }.get(mode, "GPU device check")
    lines = [
        f"## {head}",
        f"`python -m seiscore.bench gpu` on {report.get('device')}, budget {report.get('budget_minutes')} min, "
        f"{_f(report.get('elapsed_s'))} s spent; {report.get('date', '')}.",
    ]
    for name, entry in report["sections"].items():
        lines.append(f"### {entry.get('title', name)}")
        lines.append(_status_line(entry))
        results = entry.get("results") or {}
        if results:
            try:
                lines += RENDER.get(name, lambda r: [])(results)
            except Exception as exc:  # noqa: BLE001 - partial results of an unexpected shape: show them raw
                lines.append(f"(not rendered: {type(exc).__name__}: {exc})")
                lines.append("```json\n" + json.dumps(results, indent=1, default=_jsonable)[:4000] + "\n```")
    return "\n\n".join(lines)


def _cuda_device() -> bool:
    from seiscore.execution.resources import gpu_available

    try:
        return gpu_available()
    except Exception:  # noqa: BLE001 - a broken CUDA set-up counts as no GPU here
        return False


def run_check(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    """Run (or, dry, only lay out) every section within the budget; write the report after each; return it."""
    from datetime import datetime, timezone

    has_gpu = _cuda_device()
    device = args.device or ("cuda" if has_gpu else "cpu")
    dry = args.dry_run or (not args.smoke and not (has_gpu and device.startswith("cuda")))
    mode = "dry-run" if dry else ("smoke" if args.smoke else "gpu")
    work = Path(args.workdir)
    sections = plan_sections(
        device, smoke=args.smoke, workdir=str(work), pipeline_inlines=args.pipeline_inlines, keep=args.keep
    )
    only = set(filter(None, (args.only or "").split(",")))
    report: dict[str, Any] = {
        "mode": mode,
        "device": device if not dry else "no GPU",
        "budget_minutes": args.budget_minutes,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "targets": TARGETS,
        "sections": {},
    }
    budget = Budget(args.budget_minutes * 60.0)
    why = "--dry-run" if args.dry_run else "no CUDA device on this machine"
    for s in sections:
        if dry:
            entry = {"status": "no GPU", "reason": why}
            if s.name == "machine":
                from flows.bench_gpu_sections import machine_facts

                entry["results"] = {"machine": machine_facts(gpu=False)}
            report["sections"][s.name] = {"title": s.title, **entry}
    if dry:
        report["elapsed_s"] = round(budget.spent(), 1)
        paths = write_results(args.name, report, markdown(report))
        log(f"dry run: every section marked 'no GPU' ({why}); wrote {paths[0]} and {paths[1]}")
        return report

    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for s in sections:  # every section present from the start: a stop mid-way still lists the rest
        report["sections"][s.name] = {"title": s.title, "status": "pending"}
    write_results(args.name, report, markdown(report))
    for s in sections:
        if only and s.name not in only:
            entry = {"status": "skipped: not selected", "reason": f"--only {args.only}"}
        else:
            slot = budget.slot(s.need_s, s.cap_s)
            if slot is None:
                entry = {
                    "status": "skipped: budget",
                    "reason": ("optional section; " if s.optional else "")
                    + f"needs at least {s.need_s:.0f} s, {max(budget.left(), 0):.0f} s left",
                }
            else:
                log(f"[gpu-check] {s.name}: running (limit {slot:.0f} s, {budget.left():.0f} s left)")
                entry = run_child(s.target, s.kwargs, slot, logs / f"{s.name}.json", logs / f"{s.name}.log")
        report["sections"][s.name] = {"title": s.title, **entry}
        report["elapsed_s"] = round(budget.spent(), 1)
        paths = write_results(args.name, report, markdown(report))
        log(
            f"[gpu-check] {s.name}: {entry['status']}"
            + (f" - {entry['error']}" if entry.get("error") else "")
            + f"; report {paths[1]}"
        )
    if not args.keep:
        shutil.rmtree(work / "pipeline", ignore_errors=True)
    log(f"[gpu-check] done in {budget.spent():.0f} s: {paths[1]} and {paths[0]}; section logs in {logs}")
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m seiscore.bench gpu``: run the device check (see the module docstring); 0 unless misused."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.bench gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--dry-run", action="store_true", help="measure nothing: write the report skeleton, every section 'no GPU'"
    )
    ap.add_argument("--budget-minutes", type=float, default=8.0, help="wall time of the whole check (default 8)")
    ap.add_argument("--workdir", default="/tmp/seis_bench_gpu", help="scratch data and per-section logs")
    ap.add_argument("--name", default="gpu", help="result file name: benchmarks/results/NAME.{json,md}")
    ap.add_argument("--only", default=None, help="comma-separated sections to run (the others are marked not selected)")
    ap.add_argument("--smoke", action="store_true", help="toy sizes on any device (CPU included): tests the code paths")
    ap.add_argument("--device", default=None, help="torch device of the GPU figures (default cuda when there is one)")
    ap.add_argument(
        "--pipeline-inlines", type=int, default=None, help=f"pipeline survey inlines (default {PIPELINE_INLINES})"
    )
    ap.add_argument("--keep", action="store_true", help="keep the pipeline section's data")
    args = ap.parse_args(argv)
    if args.budget_minutes <= 0:
        ap.error("--budget-minutes must be positive")
    unknown = set(filter(None, (args.only or "").split(","))) - set(SECTION_TITLES)
    if unknown:
        ap.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTION_TITLES)}")
    run_check(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
