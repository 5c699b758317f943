"""Run modes ``per_item`` (batches of items, per-batch completion and resume) and ``fit`` (checkpoints, exact
resume, typed events, artifact folders), on real Zarr stores, a real Dask cluster and real torch."""

from __future__ import annotations

import json
import sys
from typing import ClassVar, Literal

import numpy as np
import pytest
import torch
import zarr
from pydantic import BaseModel, ConfigDict, Field

from seiscore import io
from seiscore.core import progress
from seiscore.core.safety import UnsafePathError
from seiscore.execution import fit as fitmode
from seiscore.execution.fit import (
    ArtifactError,
    FitCheckpoint,
    FitConfigError,
    FitDone,
    FitEpoch,
    FitEvent,
    FitRun,
    FitStart,
    FitStep,
    fit_method,
    parse_event,
    read_artifact,
    read_events,
)
from seiscore.execution.per_item import (
    ItemJob,
    PerItemSpec,
    pending_batches,
    plan_items,
    process_batch,
)
from seiscore.execution.pipeline import prepare_output, run_key
from seiscore.io.segy_write import write_cube
from seiscore.methods.base import Method, MethodConfigError, MethodSpec
from seiscore.methods.registry import register_method

torch.set_num_threads(1)


# -- a per_item test method: a 3-tap moving average along the sample axis of each item --------------------------
class SmoothParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    passes: int = Field(1, ge=1)


class SmoothSpec(PerItemSpec):
    name: Literal["test-item-smooth"] = "test-item-smooth"
    item_dim: str = "inline"
    batch_size: int = 4
    params: SmoothParams = Field(default_factory=SmoothParams)


def smooth(x: np.ndarray, passes: int = 1) -> np.ndarray:
    """3-tap moving average along the last axis (edges repeated), ``passes`` times; vectorised."""
    for _ in range(passes):
        p = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(1, 1)], mode="edge")
        x = (p[..., :-2] + p[..., 1:-1] + p[..., 2:]) / np.float32(3)
    return x


class ItemSmooth(Method):
    name = "test-item-smooth"
    spec_model = SmoothSpec
    data_kinds = ("poststack3d",)
    mode = "per_item"
    calls: ClassVar[list[tuple[int, ...]]] = []  # batch shapes seen, in call order
    fail_calls: ClassVar[set[int]] = set()  # call numbers that raise (an interrupted run)

    def build(self, spec, kind):
        def run(batch: np.ndarray) -> np.ndarray:
            n = len(ItemSmooth.calls)
            ItemSmooth.calls.append(batch.shape)
            if n in ItemSmooth.fail_calls:
                raise RuntimeError(f"injected failure on call {n}")
            return smooth(batch, spec.params.passes)

        return run


register_method(ItemSmooth)


@pytest.fixture(autouse=True)
def _fresh_counters():
    ItemSmooth.calls.clear()
    ItemSmooth.fail_calls.clear()
    yield


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A real ingested poststack store (10 inlines x 12 crosslines x 30 samples) with dead traces."""
    d = tmp_path_factory.mktemp("items")
    rng = np.random.default_rng(7)
    cube = (100.0 * rng.standard_normal((10, 12, 30))).astype(np.float32)
    missing = np.zeros((10, 12), bool)
    missing[2, 3] = missing[7, 0] = missing[9, 11] = True
    segy = write_cube(d / "s.sgy", cube, missing=missing)
    store = io.ingest(segy, d / "s.zarr", chunks=(5, 6, 30))
    return d, store


def expected_output(store, scale, fill, passes: int = 1) -> np.ndarray:
    """The whole-array result: scale, zero dead traces, smooth every trace, unscale, fill dead traces."""
    g = zarr.open_group(str(store), mode="r")
    amp = np.asarray(g["amplitude"][...], dtype=np.float32)
    live = np.broadcast_to(np.asarray(g["live_mask"][...], bool)[..., None], amp.shape)
    c, h = scale
    x = (amp - np.float32(c)) / np.float32(h)
    x = np.where(live & np.isfinite(x), x, np.float32(0))
    y = smooth(x, passes) * np.float32(h) + np.float32(c)
    return np.where(live, y, np.float32(fill))


def _output(job: ItemJob) -> np.ndarray:
    return zarr.open_group(job.output_store, mode="r", use_consolidated=False)["amplitude"][...]


def _plan(store, out, **spec) -> ItemJob:
    job = plan_items(store, out, {"name": "test-item-smooth", **spec}, "poststack3d")
    prepare_output(job, run_key("reuse", job))
    return job


@pytest.mark.parametrize("item_dim,batch", [("inline", 4), ("crossline", 5)])
def test_per_item_all_batches_equal_the_whole_array_result(survey, tmp_path, item_dim, batch):
    _, store = survey
    job = _plan(store, tmp_path / "out.zarr", item_dim=item_dim, batch_size=batch)
    n = {"inline": 10, "crossline": 12}[item_dim]
    assert (job.n_items, job.batch, job.n_batches) == (n, batch, -(-n // batch))
    axis = ("inline", "crossline").index(item_dim)
    # a batch covers whole output chunks along the item dim: concurrent batches never write the same chunk
    assert batch % job.chunks[axis] == 0 and job.scale != (0.0, 1.0)
    assert pending_batches(job) == list(range(job.n_batches))
    for b in pending_batches(job):
        info = process_batch(job, b)
        assert info["items"] == min(batch, n - b * batch)
    assert pending_batches(job) == []
    # one call per batch, the batch as one array with the item dim first
    other = {"inline": (12, 30), "crossline": (10, 30)}[item_dim]
    assert ItemSmooth.calls == [(min(batch, n - b * batch), *other) for b in range(job.n_batches)]
    out = zarr.open_group(job.output_store, mode="r", use_consolidated=False)["amplitude"]
    np.testing.assert_array_equal(_output(job), expected_output(store, job.scale, out.fill_value))
    # the job is JSON-serialisable and its spec comes back as the method's own model
    again = ItemJob.model_validate_json(job.model_dump_json())
    assert again == job and isinstance(again.spec, SmoothSpec)


def test_per_item_interrupted_run_resumes_only_pending_batches_identically(survey, tmp_path):
    _, store = survey
    whole = _plan(store, tmp_path / "whole.zarr", params={"passes": 2})
    for b in pending_batches(whole):
        process_batch(whole, b)

    job = _plan(store, tmp_path / "out.zarr", params={"passes": 2})
    assert job.n_batches == 3
    ItemSmooth.calls.clear()
    ItemSmooth.fail_calls.add(1)  # the second batch fails: the run stops there
    process_batch(job, 0)
    with pytest.raises(RuntimeError, match="injected failure"):
        process_batch(job, 1)
    assert job.state().done() == {0}  # never a flag for the failed batch
    assert pending_batches(job) == [1, 2]

    # resume: same run key keeps the output and its flags; only the pending batches are processed
    ItemSmooth.calls.clear()
    ItemSmooth.fail_calls.clear()
    assert prepare_output(job, run_key("reuse", job)) == 1
    for b in pending_batches(job):
        process_batch(job, b)
    assert len(ItemSmooth.calls) == 2 and pending_batches(job) == []
    np.testing.assert_array_equal(_output(job), _output(whole))
    # another run key (other parameters) starts over
    assert prepare_output(job, run_key("other", job)) == 0 and pending_batches(job) == [0, 1, 2]


def test_per_item_plan_refuses_bad_specs_in_one_line(survey, tmp_path):
    _, store = survey
    with pytest.raises(MethodConfigError, match="'time' is not a dim of poststack3d") as err:
        plan_items(store, tmp_path / "o.zarr", {"name": "test-item-smooth", "item_dim": "time"})
    assert "\n" not in str(err.value)
    with pytest.raises(MethodConfigError, match="batch_size"):
        plan_items(store, tmp_path / "o.zarr", {"name": "test-item-smooth", "batch_size": 0})
    with pytest.raises(MethodConfigError, match="runs in mode 'blockwise', not per_item"):
        plan_items(store, tmp_path / "o.zarr", {"name": "tlsm"})


def test_run_items_on_a_local_dask_cluster(survey, tmp_path, dask_cluster):
    """The flow side: pending batches as Prefect tasks on Dask worker processes, progress per batch."""
    import cloudpickle
    from distributed import Client
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from flows._runtime import describe_cluster, task_runner_client
    from flows.per_item import run_items
    from seiscore.core.settings import get_settings

    _, store = survey
    # the test method lives in this test module: ship it by value and register it on the workers
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with Client(dask_cluster.scheduler_address) as client:
            client.run(register_method, ItemSmooth)

        @flow(task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address))
        def items_flow(input_store: str, output_store: str) -> dict:
            job = _plan(input_store, output_store, batch_size=3)
            process_batch(job, 1)  # done before the run: not submitted again
            return run_items(job, get_settings(), describe_cluster(task_runner_client()))

        seen: list[progress.Progress] = []
        with progress.listening(seen.append):
            counts = items_flow(str(store), str(tmp_path / "out.zarr"))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert counts["batches_total"] == counts["tiles_total"] == 4
    assert counts["batches_done"] == counts["tiles_denoised"] == 3 and counts["items_processed"] == 7
    assert sum(counts["tiles_per_worker"].values()) == 3 and set(counts["task_seconds"]) >= {"compute_s"}
    assert [(p.what, p.done, p.total) for p in seen][0] == ("batches", 1, 4) and seen[-1].done == 4
    job = plan_items(store, tmp_path / "out.zarr", {"name": "test-item-smooth", "batch_size": 3})
    fill = zarr.open_group(job.output_store, mode="r", use_consolidated=False)["amplitude"].fill_value
    assert pending_batches(job) == []
    np.testing.assert_array_equal(_output(job), expected_output(store, job.scale, fill))


# -- fit -----------------------------------------------------------------------------------------------------
class TinyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr: float = 0.05
    steps: int = 12
    device: str = "cpu"


class Interrupt(Exception):
    pass


W_TRUE = torch.tensor([[1.5], [-2.0], [0.5]])


def train_linear(run: FitRun, lr: float, steps: int, stop_after: int | None = None):
    """Fit a linear model on noisy batches drawn from torch's *global* generator (so only restored random
    states make a resumed run identical); checkpoint after every step."""
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    start, last = 0, None
    ckpt = run.resume("linear")
    if ckpt is not None:
        model.load_state_dict(ckpt["state"]["model"])
        opt.load_state_dict(ckpt["state"]["optimizer"])
        start, last = ckpt["step"] + 1, ckpt["state"]["loss"]
    run.emit(FitStart(phase="linear", epochs=steps, start_epoch=start, steps=1))
    for step in range(start, steps):
        x = torch.randn(16, 3)
        y = x @ W_TRUE + 0.1 * torch.randn(16, 1)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        last = loss.item()
        run.emit(FitStep(phase="linear", epoch=step, step=1, steps=1, loss=last))
        run.checkpoint("linear", {"model": model.state_dict(), "optimizer": opt.state_dict(), "loss": last}, step)
        run.emit(FitEpoch(phase="linear", epoch=step, metrics={"loss": last}))
        if stop_after is not None and step + 1 == stop_after:
            raise Interrupt
    path = run.write_artifact(
        "linear",
        dict(model.state_dict()),
        {"method": {"kind": "linear"}},
        format="seiscore-tiny",
        format_version=2,
        data_hash="abc123",
        metrics={"loss": last},
    )
    run.done({"linear": path})
    return model, path


def fit_tiny(folder, cfg: TinyConfig, *, seed: int = 3, stop_after: int | None = None, callback=None):
    """The linear fit driven directly through a :class:`FitRun`."""
    run = FitRun(folder, cfg, seed=seed, callback=callback)
    run.start()
    return train_linear(run, cfg.lr, cfg.steps, stop_after)


class LinearParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float = 0.05
    steps: int = 6


class LinearFitSpec(MethodSpec):
    name: Literal["test-linear-fit"] = "test-linear-fit"
    params: LinearParams = Field(default_factory=LinearParams)
    device: str = "cpu"


class LinearFit(Method):
    name = "test-linear-fit"
    spec_model = LinearFitSpec
    data_kinds = ()
    mode = "fit"

    def fit(self, spec, run):
        model, path = train_linear(run, spec.params.lr, spec.params.steps)
        return {"artifact": str(path), "weight": model.weight.detach().flatten().tolist()}


register_method(LinearFit)


def test_fit_method_runs_a_registered_fit_method_and_resumes_it(tmp_path):
    spec = {"name": "test-linear-fit", "params": {"steps": 6}}

    def stop(event):
        if isinstance(event, FitEpoch) and event.epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit_method(spec, tmp_path / "b", seed=1, callback=stop)
    resumed = fit_method(spec, tmp_path / "b", seed=1)
    whole = fit_method(spec, tmp_path / "a", seed=1)
    assert resumed["weight"] == whole["weight"] and resumed["artifact"].endswith("b/artifacts/linear")
    assert read_artifact(resumed["artifact"], format="seiscore-tiny", format_version=2)[0]["config"]["params"] == {
        "lr": 0.05,
        "steps": 6,
    }
    with pytest.raises(FitConfigError, match=r"differs in \['params'\]"):
        fit_method({**spec, "params": {"steps": 7}}, tmp_path / "a", seed=1)
    fit_method({**spec, "device": "cuda:1"}, tmp_path / "a", seed=1)  # device: may change between resumptions
    with pytest.raises(MethodConfigError, match="runs in mode 'per_item', not fit"):
        fit_method({"name": "test-item-smooth"}, tmp_path / "c")


def test_fit_interrupted_and_resumed_is_bit_identical(tmp_path):
    cfg = TinyConfig()
    a, _ = fit_tiny(tmp_path / "a", cfg)
    with pytest.raises(Interrupt):
        fit_tiny(tmp_path / "b", cfg, stop_after=5)
    torch.manual_seed(999)  # whatever happened in between: resume restores the recorded states
    np.random.seed(5)
    events: list[FitEvent] = []
    b, _ = fit_tiny(tmp_path / "b", cfg, callback=events.append)
    assert events[0] == FitStart(phase="linear", epochs=12, start_epoch=5, steps=1)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    # the per-epoch rows of both folders are the same losses (the interrupted one: 5 + 7 epochs)
    rows = lambda f: [json.loads(s) for s in (f / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert [r["loss"] for r in rows(tmp_path / "a")] == [r["loss"] for r in rows(tmp_path / "b")]
    assert [r["epoch"] for r in rows(tmp_path / "b")] == list(range(12))


def test_fit_refuses_another_configuration_but_not_volatile_fields(tmp_path):
    fit_tiny(tmp_path / "r", TinyConfig(steps=2))
    with pytest.raises(FitConfigError, match=r"another configuration \(differs in \['lr'\]\)") as err:
        FitRun(tmp_path / "r", TinyConfig(steps=2, lr=0.1), seed=3).check_same_run()
    assert "\n" not in str(err.value) and str(tmp_path / "r") in str(err.value)
    FitRun(tmp_path / "r", TinyConfig(steps=2, device="cuda"), seed=3).check_same_run()  # device is volatile


def test_fit_events_are_typed_and_recorded(tmp_path):
    seen: list[FitEvent] = []
    fit_tiny(tmp_path / "r", TinyConfig(steps=3), callback=seen.append)
    assert [e.event for e in seen] == ["start"] + ["step", "checkpoint", "epoch"] * 3 + ["artifact", "done"]
    assert isinstance(seen[2], FitCheckpoint) and seen[2].step == 0 and seen[2].path.endswith("linear.pt")
    assert isinstance(seen[-1], FitDone) and seen[-1].artifacts["linear"].endswith("artifacts/linear")
    assert seen[-2].metrics["loss"] == seen[-3].metrics["loss"]
    recorded = read_events(tmp_path / "r")
    assert recorded == seen and all(type(r) is type(s) for r, s in zip(recorded, seen))
    assert parse_event({"event": "step", "epoch": 0, "step": 1, "steps": 2, "loss": 0.5}) == FitStep(
        epoch=0, step=1, steps=2, loss=0.5
    )
    with pytest.raises(ValueError):
        parse_event({"event": "nope"})


def test_fit_artifact_round_trip_and_one_line_refusals(tmp_path):
    model, path = fit_tiny(tmp_path / "r", TinyConfig(steps=2), seed=11)
    fmt = dict(format="seiscore-tiny", format_version=2)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    card, tensors = read_artifact(path, **fmt, expected=shapes)
    assert all(torch.equal(tensors[k], v) for k, v in model.state_dict().items())
    assert card["format"] == "seiscore-tiny" and card["format_version"] == 2 and card["seiscore_version"]
    assert card["config"] == {"lr": 0.05, "steps": 2, "device": "cpu"} and card["seed"] == 11
    assert card["data_hash"] == "abc123" and card["method"] == {"kind": "linear"} and card["created"]

    def one_line(exc_type, match, **kw):
        with pytest.raises(exc_type, match=match) as err:
            read_artifact(kw.pop("folder", path), **{**fmt, **kw})
        assert "\n" not in str(err.value)

    one_line(ArtifactError, "TINY artifact .* has format version 2; .* reads version 3", format_version=3)
    one_line(ArtifactError, "describes format 'seiscore-tiny', expected 'seiscore-other'", format="seiscore-other")
    one_line(ArtifactError, r"1 missing tensor\(s\) \['extra'\]", expected={**shapes, "extra": (1,)})
    one_line(ArtifactError, "wrong shape: .*weight", expected={**shapes, "weight": (3, 1)})
    one_line(FileNotFoundError, "model_card.json is missing", folder=tmp_path)
    # writing: never over a folder the product did not write, and not over an artifact without overwrite
    with pytest.raises(FileExistsError, match="already exists"):
        fitmode.write_artifact(path, tensors, {}, **fmt)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(UnsafePathError, match="not a TINY model artifact"):
        fitmode.write_artifact(user, tensors, {}, **fmt, overwrite=True)
    assert (user / "notes.txt").read_text() == "keep"


def test_fit_module_imports_without_torch(tmp_path):
    """``import seiscore.execution.fit`` stays cheap: torch only when a checkpoint or artifact is touched."""
    import subprocess

    code = "import sys, seiscore.execution.fit, seiscore.execution.per_item; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_event_publisher_turns_fit_events_into_prefect_artifacts(tmp_path, prefect_harness):
    """flows.fit.EventPublisher on a real Prefect server: per-epoch table versions, progress, model markdown."""
    import httpx
    from prefect import flow

    from flows.fit import EventPublisher

    @flow
    def tiny_fit(folder: str) -> dict:
        return fit_method(
            {"name": "test-linear-fit", "params": {"steps": 3}},
            folder,
            callback=EventPublisher(prefix="tiny-fit", columns={"loss": "loss"}),
        )

    tiny_fit(str(tmp_path / "r"))

    def artifacts(key: str) -> list[dict]:
        body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 100, "offset": 0}
        r = httpx.post(f"{prefect_harness.rstrip('/')}/artifacts/filter", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    tables = artifacts("tiny-fit-training-metrics")
    assert len(tables) == 3  # one version per epoch, each with every epoch so far
    rows = json.loads(tables[0]["data"])
    assert [(r["phase"], r["epoch"]) for r in rows] == [("linear", 0), ("linear", 1), ("linear", 2)] and "loss" in rows[
        0
    ]
    progress_artifact = artifacts("tiny-fit-training-progress")[0]
    assert float(progress_artifact["data"]) == 100.0
    md = artifacts("tiny-fit-model-linear")[0]["data"]
    assert "artifacts/linear" in md and "| loss |" in md
