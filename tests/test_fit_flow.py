"""The generic ``fit`` path: any registered fit-mode method runs through the ``fit-method`` flow and ``seis fit``
(real Prefect server, real Dask workers, real torch), resumes in its folder, and user mistakes are one line."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from seiscore.core.safety import UnsafePathError
from seiscore.execution.fit import FitStart, FitStep, read_artifact, read_events
from seiscore.methods.base import MethodConfigError
from seiscore.methods.registry import UnknownMethodError, register_method

ROOT = Path(__file__).resolve().parents[1]

# A third-party fit method: a seeded linear regression (3 weights), checkpointed after each epoch. A file
# ``FOLDER.stop-at-epoch`` beside the run folder holding an epoch number stops the run there once (an interruption).
TINY_FIT = """
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from seiscore.execution.fit import FitEpoch, FitStart, FitStep
from seiscore.methods.base import Method, MethodSpec

W_TRUE = torch.tensor([[1.5], [-2.0], [0.5]])


class TinyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float = 0.05
    epochs: int = Field(5, ge=1)
    steps: int = Field(3, ge=1)


class TinyFitSpec(MethodSpec):
    name: Literal["toy-fit"] = "toy-fit"
    params: TinyParams = Field(default_factory=TinyParams)


class TinyFit(Method):
    name = "toy-fit"
    spec_model = TinyFitSpec
    data_kinds = ()
    mode = "fit"

    def fit(self, spec, run):
        torch.set_num_threads(1)
        p = spec.params
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=0.9)
        start, loss = 0, None
        ckpt = run.resume("linear")
        if ckpt is not None:
            model.load_state_dict(ckpt["state"]["model"])
            opt.load_state_dict(ckpt["state"]["optimizer"])
            start, loss = ckpt["step"] + 1, ckpt["state"]["loss"]
        run.emit(FitStart(phase="linear", epochs=p.epochs, start_epoch=start, steps=p.steps))
        stop = Path(f"{run.folder}.stop-at-epoch")
        for epoch in range(start, p.epochs):
            if stop.is_file() and int(stop.read_text()) == epoch:
                stop.unlink()
                raise RuntimeError(f"stopped at epoch {epoch}")
            for step in range(p.steps):
                x = torch.randn(16, 3)
                y = x @ W_TRUE + 0.1 * torch.randn(16, 1)
                batch = torch.nn.functional.mse_loss(model(x), y)
                opt.zero_grad()
                batch.backward()
                opt.step()
                loss = batch.item()
                run.emit(FitStep(phase="linear", epoch=epoch, step=step + 1, steps=p.steps, loss=loss))
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "loss": loss}
            run.checkpoint("linear", state, epoch)
            run.emit(FitEpoch(phase="linear", epoch=epoch, metrics={"loss": loss}))
        weight = model.weight.detach().flatten().tolist()
        path = run.write_artifact(
            "linear", dict(model.state_dict()), {"method": "toy-fit"}, format="seiscore-tinyfit",
            format_version=1, metrics={"loss": loss},
        )
        run.done({"linear": path}, {"weight": weight})
        return {"artifact": str(path), "weight": weight}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A distribution ``seis-tinyfit`` (module + dist-info with a ``seiscore.methods`` entry point), imported and
    registered in this process too."""
    site = tmp_path_factory.mktemp("site")
    (site / "seis_tinyfit.py").write_text(TINY_FIT)
    info = site / "seis_tinyfit-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seis-tinyfit\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[seiscore.methods]\ntoy-fit = seis_tinyfit:TinyFit\n")
    sys.path.insert(0, str(site))
    module = importlib.import_module("seis_tinyfit")
    register_method(module.TinyFit)
    yield site
    sys.path.remove(str(site))


@pytest.fixture
def roots(tmp_path, monkeypatch) -> Path:
    """``tmp_path/data`` as the only data root of the runs."""
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setenv("SEIS_TASK_RETRY_DELAY_S", "0")
    return tmp_path / "data"


def _register_from(site: str) -> None:
    """Import the test method from ``site`` and register it (run on each Dask worker)."""
    if site not in sys.path:
        sys.path.insert(0, site)
    register_method(importlib.import_module("seis_tinyfit").TinyFit)


@pytest.fixture
def run_flow(site, dask_cluster, prefect_harness):
    """``run(method, folder, **kw)``: the fit-method flow on the session's Dask cluster, whose workers import the
    test method from the temporary site (their ``sys.path`` predates it)."""
    from distributed import Client

    from flows._runtime import make_task_runner
    from flows.fit_method import fit_method_flow
    from seiscore.core.settings import get_settings

    with Client(dask_cluster.scheduler_address) as client:
        client.run(_register_from, str(site))

    def run(method: str, folder, **kw):
        runner = make_task_runner(get_settings(dask_address=dask_cluster.scheduler_address))
        # validate_parameters off: the flow's method Literal may predate this test's registration
        flow = fit_method_flow.with_options(task_runner=runner, validate_parameters=False)
        return flow(method, str(folder), **kw)

    return run


def _artifacts(api: str, key: str) -> list[dict]:
    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 100, "offset": 0}
    r = httpx.post(f"{api.rstrip('/')}/artifacts/filter", json=body, timeout=30)
    r.raise_for_status()
    return r.json()


def _epochs(folder: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_fit_flow_runs_a_registered_method_publishes_artifacts_and_resumes(run_flow, roots, prefect_harness):
    a, b = roots / "a", roots / "b"
    first = run_flow("toy-fit", a, params={"epochs": 4}, seed=7)
    assert first["folder"] == str(a.resolve()) and first["method"] == "toy-fit"
    card, tensors = read_artifact(first["summary"]["artifact"], format="seiscore-tinyfit", format_version=1)
    assert card["config"]["params"] == {"lr": 0.05, "epochs": 4, "steps": 3} and card["seed"] == 7
    assert set(tensors) == {"weight", "bias"} and (a / "artifacts" / "linear" / "model_card.json").is_file()
    assert _epochs(a) == [0, 1, 2, 3]

    # Prefect artifacts of the run: a table version per epoch, progress at 100 %, the model's markdown
    tables = _artifacts(prefect_harness, "toy-fit-training-metrics")
    assert [r["epoch"] for r in json.loads(tables[0]["data"])] == [0, 1, 2, 3]
    assert float(_artifacts(prefect_harness, "toy-fit-training-progress")[0]["data"]) == 100.0
    assert "artifacts/linear" in _artifacts(prefect_harness, "toy-fit-model-linear")[0]["data"]

    # a second run on the same folder resumes after the last epoch: no step again, the same result
    steps_before = sum(isinstance(e, FitStep) for e in read_events(a))
    again = run_flow("toy-fit", a, params={"epochs": 4}, seed=7)
    events = read_events(a)
    assert sum(isinstance(e, FitStep) for e in events) == steps_before == 12
    assert [e.start_epoch for e in events if isinstance(e, FitStart)] == [0, 4]
    assert again["summary"]["weight"] == first["summary"]["weight"] and _epochs(a) == [0, 1, 2, 3]

    # interrupted at epoch 2 (the task's retry resumes after the epoch-1 checkpoint): every epoch once,
    # bit-identical weights
    (roots / "b.stop-at-epoch").write_text("2")
    interrupted = run_flow("toy-fit", b, params={"epochs": 4}, seed=7)
    assert [e.start_epoch for e in read_events(b) if isinstance(e, FitStart)] == [0, 2]
    assert _epochs(b) == [0, 1, 2, 3] and interrupted["summary"]["weight"] == first["summary"]["weight"]

    # another configuration in the same folder is refused in one line
    with pytest.raises(ValueError, match=r"differs in \['params'\]") as err:
        run_flow("toy-fit", a, params={"epochs": 5}, seed=7)
    assert "\n" not in str(err.value)


def test_fit_flow_refuses_other_modes_unknown_names_and_unsafe_folders(run_flow, roots, tmp_path):
    with pytest.raises(MethodConfigError, match="method 'tlsm' runs in mode 'blockwise', not fit") as err:
        run_flow("tlsm", roots / "t")
    assert "\n" not in str(err.value)
    with pytest.raises(UnsafePathError, match="outside the data roots") as err:
        run_flow("toy-fit", tmp_path / "elsewhere")
    assert "\n" not in str(err.value) and not (tmp_path / "elsewhere").exists()
    mine = roots / "mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(UnsafePathError, match="holds no fit run"):
        run_flow("toy-fit", mine)
    with pytest.raises(UnknownMethodError, match="unknown method 'toy-fitt'; did you mean"):
        run_flow("toy-fitt", roots / "u")


def _seis(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    code = "import sys; from seiscore.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.fixture
def seis_env(site, tmp_path, prefect_harness) -> dict:
    """The environment of a ``seis`` subprocess that finds the plug-in through its entry point."""
    path = [str(site), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "PREFECT_API_URL": prefect_harness,
        "SEIS_DATA_ROOTS": str(tmp_path / "data"),
        "SEIS_DASK_WORKERS": "1",
    }


@pytest.mark.parametrize(
    "args,message",
    [
        (["toy-fitt", "--out", "data/r"], "unknown method 'toy-fitt'; did you mean 'toy-fit'"),
        (["toy-fit", "--out", "data/r", "--param", "epoch=2"], "unknown toy-fit parameter 'epoch'"),
        (["toy-fit", "--out", "data/r", "--param", "epochs=0"], "epochs"),
        (["tlsm", "--out", "data/r"], "runs in mode 'blockwise', not fit"),
        (["toy-fit", "--out", "/tmp/outside-the-roots"], "outside the data roots"),
    ],
)
def test_seis_fit_mistakes_are_one_line_and_exit_2(seis_env, tmp_path, args, message):
    args = [str(tmp_path / a) if a.startswith("data/") else a for a in args]
    res = _seis("fit", *args, env=seis_env, timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("seis fit: error: ") and message in res.stderr
    assert not (tmp_path / "data" / "r").exists()


def test_seis_fit_runs_a_plugin_method_on_a_local_cluster_and_resumes(seis_env, tmp_path):
    out = tmp_path / "data" / "run"
    res = _seis("fit", "toy-fit", "--out", str(out), "--param", "epochs=3", "--seed", "1", "--progress", env=seis_env)
    assert res.returncode == 0, res.stderr
    assert "toy-fit: done" in res.stdout and str(out.resolve()) in res.stdout
    assert "run linear steps" in res.stderr  # the progress bar over the fit's steps
    assert (out / "artifacts" / "linear" / "model_card.json").is_file() and _epochs(out) == [0, 1, 2]
    again = _seis("fit", "toy-fit", "--out", str(out), "--param", "epochs=3", "--seed", "1", env=seis_env)
    assert again.returncode == 0, again.stderr
    assert [e.start_epoch for e in read_events(out) if isinstance(e, FitStart)] == [0, 3]
