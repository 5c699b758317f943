"""The GPU device check (``python -m seiscore.bench gpu``, flows/bench_gpu.py) on a CPU machine: the dry run's
report, the budget and skip logic, the per-section child processes (result, error, crash, timeout) and the
nvidia-smi sampler's parsing, with fake sections and a fake sampling command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flows import bench_gpu, bench_gpu_sections
from seiscore.bench import common

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["machine", "tlsm", "pipeline", "ssb", "cdiffsd", "siren", "drfwi", "ssb_large"]


def _args(tmp_path, *extra: str):
    return ["--name", "gpu_test", "--workdir", str(tmp_path / "work"), *extra]


def test_dry_run_writes_every_section_marked_no_gpu(tmp_path):
    """Through the real ``python -m seiscore.bench gpu --dry-run`` when the entry point is installed."""
    from seiscore.bench.__main__ import available

    out = tmp_path / "results"
    if "gpu" in available():
        env = {**os.environ, "SEIS_BENCH_RESULTS": str(out)}
        cmd = [sys.executable, "-m", "seiscore.bench", "gpu", "--dry-run", *_args(tmp_path)]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "dry run" in done.stdout
    else:  # pragma: no cover - installed metadata older than pyproject.toml and not regenerated
        mp = pytest.MonkeyPatch()
        mp.setattr(common, "RESULTS_DIR", out)
        try:
            assert bench_gpu.main(["--dry-run", *_args(tmp_path)]) == 0
        finally:
            mp.undo()
    report = json.loads((out / "gpu_test.json").read_text())
    md = (out / "gpu_test.md").read_text()
    assert report["benchmark"] == "gpu_test" and report["mode"] == "dry-run"
    assert list(report["sections"]) == SECTIONS
    assert {s["status"] for s in report["sections"].values()} == {"no GPU"}
    assert report["sections"]["machine"]["results"]["machine"]["cpu_count"] == os.cpu_count()
    for name in SECTIONS:
        assert bench_gpu.SECTION_TITLES[name] in md
    assert md.count("Status: **no GPU**: --dry-run.") == len(SECTIONS)
    assert not (tmp_path / "work").exists()  # nothing ran: no scratch data, no section logs


def test_without_cuda_the_check_is_a_dry_run(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(bench_gpu, "_cuda_device", lambda: False)
    assert bench_gpu.main(_args(tmp_path)) == 0
    report = json.loads((tmp_path / "gpu_test.json").read_text())
    assert report["device"] == "no GPU"
    assert {s["reason"] for s in report["sections"].values()} == {"no CUDA device on this machine"}


def test_budget_slots():
    now = [100.0]
    budget = bench_gpu.Budget(60.0, reserve_s=10.0, clock=lambda: now[0])
    assert budget.slot(need_s=20, cap_s=30) == 30  # 50 s left: the cap
    now[0] += 25
    assert budget.left() == pytest.approx(25.0)
    assert budget.slot(need_s=20, cap_s=30) == pytest.approx(25.0)  # squeezed to what is left
    assert budget.slot(need_s=26, cap_s=30) is None  # does not fit: skipped
    now[0] += 30
    assert budget.left() < 0 and budget.slot(need_s=0, cap_s=5) is None


def test_sections_that_do_not_fit_are_skipped_and_reported(tmp_path, monkeypatch, capsys):
    """A budget smaller than the reserve: no section starts; each is written 'skipped: budget' (or not selected)."""
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    started = []
    monkeypatch.setattr(bench_gpu, "run_child", lambda *a, **k: started.append(a) or {"status": "ok"})
    bench_gpu.main(_args(tmp_path, "--smoke", "--device", "cpu", "--budget-minutes", "0.1", "--only", "tlsm,ssb"))
    report = json.loads((tmp_path / "gpu_test.json").read_text())
    assert started == []
    status = {k: v["status"] for k, v in report["sections"].items()}
    assert status == {k: "skipped: budget" if k in ("tlsm", "ssb") else "skipped: not selected" for k in SECTIONS}
    need = {
        s.name: s.need_s
        for s in bench_gpu.plan_sections("cpu", smoke=True, workdir="w", pipeline_inlines=None, keep=False)
    }
    assert f"needs at least {need['tlsm']:.0f} s" in report["sections"]["tlsm"]["reason"]
    assert "Status: **skipped: budget**" in (tmp_path / "gpu_test.md").read_text()
    with pytest.raises(SystemExit):
        bench_gpu.main(_args(tmp_path, "--smoke", "--device", "cpu", "--only", "tlsm,warp"))
    assert "unknown section(s) warp" in capsys.readouterr().err


@pytest.fixture
def fake_sections(tmp_path, monkeypatch):
    (tmp_path / "fake_sections.py").write_text(
        textwrap.dedent(
            """
            import os, time

            def ok(emit, value):
                emit("a", value)
                emit("b", [value, 2 * value])

            def boom(emit):
                emit("a", 1)
                raise ValueError("bad input\\nsecond line")

            def crash(emit):
                emit("a", 1)
                print("going down", flush=True)
                os._exit(3)

            def slow(emit):
                emit("a", 1)
                time.sleep(120)
            """
        )
    )
    paths = [str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    return lambda name, timeout=60, **kw: bench_gpu.run_child(
        f"fake_sections:{name}", kw, timeout, tmp_path / f"{name}.json", tmp_path / f"{name}.log"
    )


def test_child_results_errors_crashes_and_timeouts(fake_sections):
    ok = fake_sections("ok", value=3)
    assert ok["status"] == "ok" and ok["results"] == {"a": 3, "b": [3, 6]} and "error" not in ok

    boom = fake_sections("boom")
    assert boom["status"] == "error" and boom["error"] == "ValueError: bad input"  # one line
    assert boom["results"] == {"a": 1}  # what it emitted before failing is kept
    assert "Traceback" in Path(boom["log"]).read_text()

    crash = fake_sections("crash")
    assert (
        crash["status"] == "error"
        and crash["error"].startswith("exited with code 3")
        and "going down" in crash["error"]
    )

    t0 = time.monotonic()
    slow = fake_sections("slow", timeout=3)
    assert time.monotonic() - t0 < 20
    assert slow["status"] == "timeout" and slow["results"] == {"a": 1}
    assert "time limit of 3 s" in slow["error"]


def test_report_markdown_renders_targets_and_partial_sections():
    tlsm = {
        "float32": {
            "shape": [200, 400, 100],
            "iterations": 20,
            "gpu_times_s": [0.25, 0.24, 0.26],
            "gpu_s": 0.25,
            "cpu_s": 5.0,
            "speedup": 20.0,
            "psnr_gpu": 45.30,
            "psnr_cpu": 45.305,
            "psnr_diff_db": 0.005,
            "rel_diff": 1e-6,
        }
    }
    run = {"samples_per_s": 2e6, "tiles_samples_per_s": 4e6, "wall_s": 10.0, "tiles_s": 5.0, "stages_s": {}}
    pipeline = {
        "survey": {"shape": [24, 200, 400], "bytes": 8e6, "generate_s": 1.0},
        "gpu": {**run, "cluster": "LocalCUDACluster", "gpu_util": {"samples": 4, "util_mean": 55.0, "util_max": 90.0}},
        "cpu": {**run, "cluster": "LocalCluster", "samples_per_s": 1e6, "tiles_samples_per_s": 1e6},
        "output_rel_diff": 2e-7,
    }
    report = {
        "mode": "gpu",
        "device": "cuda",
        "budget_minutes": 8,
        "elapsed_s": 100.0,
        "sections": {
            "tlsm": {"title": "TLSM", "status": "ok", "seconds": 40.0, "results": tlsm},
            "pipeline": {
                "title": "Pipeline",
                "status": "timeout",
                "seconds": 200.0,
                "error": "stopped",
                "results": pipeline,
            },
            "ssb": {"title": "SSB", "status": "error", "error": "TypeError: x", "results": {"model": {"patch": 32}}},
            "siren": {"title": "SIREN", "status": "ok", "results": {"paper_decoder": {"unexpected": 1}}},
        },
    }
    md = bench_gpu.markdown(report)
    row = next(line for line in md.splitlines() if line.startswith("| float32"))
    assert "20x" in row and row.count("yes") == 3
    assert "Demo cube 100 x 200 x 400 (F = 0.2, sigma = 0.01), 20 iterations; medians of 3" in md
    assert "**tiles stage 4.00x** (target >= 10x: **no**" in md and "end to end 2.00x" in md
    assert "55 / 90" in md
    assert "Status: **timeout** (200 s)" in md and "Status: **error**: `TypeError: x` (partial figures below)." in md
    assert "not rendered: KeyError" in md and '"unexpected": 1' in md  # an unexpected shape is shown raw


def test_smi_line_parsing():
    assert bench_gpu_sections.parse_smi_line("57, 1234\n") == (57.0, 1234.0)
    assert bench_gpu_sections.parse_smi_line(" 0 , 0") == (0.0, 0.0)
    assert bench_gpu_sections.parse_smi_line("[N/A], 300") is None
    assert bench_gpu_sections.parse_smi_line("utilization.gpu [%], memory.used [MiB]") is None
    assert bench_gpu_sections.parse_smi_line("NVIDIA-SMI has failed") is None


def test_sampler_reads_a_fake_nvidia_smi_and_stops_it():
    lines = ["10, 100", "junk", "30, 300", "[N/A], 9"]  # two samples, two lines that are not
    script = f"import time\nfor line in {lines!r}:\n    print(line, flush=True)\ntime.sleep(120)"
    sampler = bench_gpu_sections.GPUSampler([sys.executable, "-c", script], torch_fallback=False)
    with sampler:
        deadline = time.monotonic() + 20
        while len(sampler.samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc = sampler._proc
    assert proc is not None and proc.poll() is not None  # the sampling process is stopped with the block
    summary = sampler.summary()
    assert summary["samples"] == 2 and summary["util_mean"] == 20.0 and summary["util_max"] == 30.0
    assert summary["mem_used_mib_max"] == 300.0


def test_sampler_without_nvidia_smi_says_so():
    with bench_gpu_sections.GPUSampler(["/nonexistent/nvidia-smi"], torch_fallback=False) as sampler:
        pass
    summary = sampler.summary()
    assert summary["source"] is None and summary["samples"] == 0 and "not runnable" in summary["note"]


def test_a_real_section_in_its_child_process(tmp_path):
    """The machine section through the same child-process path the GPU run takes (``--device cpu``)."""
    entry = bench_gpu.run_child(
        "flows.bench_gpu_sections:machine_section",
        {"device": "cpu"},
        120,
        tmp_path / "machine.json",
        tmp_path / "machine.log",
    )
    assert entry["status"] == "ok", entry
    facts = entry["results"]["machine"]
    assert facts["cpu_count"] == os.cpu_count() and facts["dask"] and "gpu" not in facts
