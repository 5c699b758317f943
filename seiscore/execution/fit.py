"""Run mode ``fit``: a training or inversion run with checkpoints, exact resume, typed events and artifacts.

A :class:`FitRun` owns one run folder::

    FOLDER/fit_config.json       the run's configuration (a rerun must match it, see check_same_run)
    FOLDER/checkpoints/NAME.pt   the latest checkpoint of each phase NAME (written atomically)
    FOLDER/events.jsonl          every event the run emitted, one JSON object a line
    FOLDER/metrics.jsonl         one flat row per epoch: phase, epoch, metrics, seconds
    FOLDER/artifacts/NAME/       artifact folders: model_card.json + model.safetensors

Resume with identical results: a checkpoint holds the method's state (model, optimiser, counters)
*and* the random-number states of Python, NumPy and torch (CPU and CUDA), restored by
:meth:`FitRun.resume`; :meth:`FitRun.generator` gives torch generators seeded by the run's seed and
any counters (e.g. phase and epoch), so batch order never depends on how often the run stopped.

Events (:class:`FitEvent` subclasses, discriminated on ``event``) go to the callback (the CLI's
progress bar, the flow's Prefect artifacts) and to ``events.jsonl``. Artifacts: a folder written
atomically (temporary folder renamed into place) that replaces only a folder of the same format or
one the product owns (:func:`seiscore.core.safety.may_replace`); :func:`read_artifact` checks format,
version, tensor names and shapes, each problem a one-line error naming the folder.

torch and safetensors are imported only when a checkpoint or artifact is written or read.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

TENSORS, CARD = "model.safetensors", "model_card.json"
CONFIG_FILE, EVENTS_FILE, METRICS_FILE = "fit_config.json", "events.jsonl", "metrics.jsonl"
CHECKPOINT_FORMAT = "seiscore-fit-checkpoint"


class FitConfigError(ValueError):
    """The run folder holds a run with another configuration; the message names the differing fields."""


class ArtifactError(ValueError):
    """An artifact folder that cannot be read as the expected format (one line naming the folder)."""


# -- events --------------------------------------------------------------------------------------------------
class FitEvent(BaseModel):
    """Base of the typed progress events of a fit; ``event`` names the subclass."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str
    phase: str = ""


class FitStart(FitEvent):
    """A phase starts (or resumes at ``start_epoch``): ``epochs`` in all, ``steps`` per epoch."""

    event: Literal["start"] = "start"
    epochs: int
    start_epoch: int = 0
    steps: int = 0


class FitStep(FitEvent):
    """One optimisation step ``step`` of ``steps`` in ``epoch``, with its loss."""

    event: Literal["step"] = "step"
    epoch: int
    step: int
    steps: int
    loss: float


class FitEpoch(FitEvent):
    """An epoch ended: its metrics (train loss, held-out scores, ...) and wall seconds."""

    event: Literal["epoch"] = "epoch"
    epoch: int
    metrics: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        """The flat row of ``metrics.jsonl``: phase, epoch, the metrics, seconds."""
        return {"phase": self.phase, "epoch": self.epoch, **self.metrics, "seconds": self.seconds}


class FitCheckpoint(FitEvent):
    """A checkpoint of phase ``phase`` was written after ``step`` (an epoch, an iteration)."""

    event: Literal["checkpoint"] = "checkpoint"
    step: int
    path: str


class FitArtifact(FitEvent):
    """An artifact folder was written, with the metrics worth showing (e.g. held-out scores per mode)."""

    event: Literal["artifact"] = "artifact"
    name: str
    path: str
    metrics: dict[str, Any] = Field(default_factory=dict)


class FitDone(FitEvent):
    """The run finished: its artifacts by name and a summary."""

    event: Literal["done"] = "done"
    artifacts: dict[str, str] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)


AnyFitEvent = Annotated[
    Union[FitStart, FitStep, FitEpoch, FitCheckpoint, FitArtifact, FitDone], Field(discriminator="event")
]
_EVENTS = TypeAdapter(AnyFitEvent)
Callback = Callable[[FitEvent], None]


def parse_event(data: dict[str, Any] | str) -> FitEvent:
    """The typed event of a mapping or a JSON line (e.g. one line of ``events.jsonl``)."""
    return _EVENTS.validate_json(data) if isinstance(data, str) else _EVENTS.validate_python(data)


def read_events(folder: str | os.PathLike) -> list[FitEvent]:
    """Every event recorded in ``FOLDER/events.jsonl`` (empty when there is none)."""
    path = Path(folder) / EVENTS_FILE
    if not path.is_file():
        return []
    return [parse_event(line) for line in path.read_text().splitlines() if line.strip()]


def read_events_from(folder: str | os.PathLike, offset: int = 0) -> tuple[list[FitEvent], int]:
    """The events appended to ``FOLDER/events.jsonl`` after byte ``offset`` (complete lines only) and the offset
    to read on from: how a process that does not run the fit follows it (e.g. the flow feeding a progress bar)."""
    path = Path(folder) / EVENTS_FILE
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1  # a line being written is read next time
    lines = data[:end].decode().splitlines()
    return [parse_event(line) for line in lines if line.strip()], offset + end


class FitProgress:
    """Fit callback reporting progress through :mod:`seiscore.core.progress`: per phase, the steps done of all
    its epochs (``"steps"``), or its epochs done when it announces no steps (``"epochs"``); ``label`` prefixes
    the phase in the label (e.g. the run folder's name)."""

    def __init__(self, label: str = ""):
        self.label = label
        self.phases: dict[str, tuple[int, int, int]] = {}  # phase -> (steps per epoch, epochs, done)

    def __call__(self, event: FitEvent) -> None:
        """Report the progress an event makes (a phase's start, a step, an epoch)."""
        from seiscore.core import progress

        if isinstance(event, FitStart):
            per = max(event.steps, 1)
            self.phases[event.phase] = (event.steps, event.epochs, per * event.start_epoch)
        elif event.phase not in self.phases:
            return
        steps, epochs, done = self.phases[event.phase]
        if isinstance(event, FitStep) and steps:
            done = steps * event.epoch + event.step
        elif isinstance(event, FitEpoch):
            done = max(steps, 1) * (event.epoch + 1)
        elif not isinstance(event, FitStart):
            return
        self.phases[event.phase] = (steps, epochs, done)
        label = f"{self.label} {event.phase}".strip()
        progress.report("steps" if steps else "epochs", label, done, max(steps, 1) * epochs)


# -- random states -------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """The random-number states of Python, NumPy and torch (CPU, and CUDA when initialised)."""
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states from :func:`rng_state`."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())  # a checkpoint loaded with map_location="cuda" moved it
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators with ``seed``."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seeded_generator(*parts: int):
    """A torch generator seeded from the integers ``parts`` (e.g. seed, phase, epoch) through a SeedSequence."""
    import torch

    return torch.Generator().manual_seed(int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0]))


def _torch_save(payload: dict[str, Any], path: Path) -> None:
    import torch

    torch.save(payload, path)


def _torch_load(path: Path, map_location: Any = None) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location=map_location, weights_only=False)


# -- the run -------------------------------------------------------------------------------------------------
class FitRun:
    """One fit's folder: configuration check, checkpoints with random states, events, artifacts.

    ``config`` is the run's pydantic configuration; the fields named in ``volatile`` (device, threads,
    output folder) may change between a run and its resumption, any other change is refused.
    ``saver(payload, path)`` / ``loader(path, map_location)`` replace ``torch.save`` / ``torch.load``.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        config: BaseModel,
        *,
        seed: int,
        callback: Callback | None = None,
        volatile: Iterable[str] = ("device", "threads", "output_dir"),
        config_file: str = CONFIG_FILE,
        saver: Callable[[dict[str, Any], Path], None] | None = None,
        loader: Callable[..., dict[str, Any]] | None = None,
    ):
        self.folder = Path(folder)
        self.config, self.seed = config, int(seed)
        self.callback = callback
        self.volatile = frozenset(volatile)
        self.config_path = self.folder / config_file
        self.saver, self.loader = saver or _torch_save, loader or _torch_load

    # -- identity ------------------------------------------------------------------------------------------
    def _config_json(self) -> dict[str, Any]:
        return json.loads(self.config.model_dump_json())

    def check_same_run(self, volatile: Iterable[str] | None = None) -> None:
        """Raise :class:`FitConfigError` when the folder holds a run of another configuration (the ``volatile``
        fields aside; default: the run's); nothing when the folder is new or holds this run."""
        if not self.config_path.is_file():
            return
        skip = self.volatile if volatile is None else frozenset(volatile)
        old = {k: v for k, v in json.loads(self.config_path.read_text()).items() if k not in skip}
        new = {k: v for k, v in self._config_json().items() if k not in skip}
        if old != new:
            changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            raise FitConfigError(
                f"{self.folder} holds a training run with another configuration (differs in {changed}); "
                "use a new output_dir or delete the old run"
            )

    def start(self) -> None:
        """Begin or resume the run: :meth:`check_same_run`, create the folder, record the configuration and
        seed the global generators (a resumed phase restores its own states in :meth:`resume`)."""
        self.check_same_run()
        (self.folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config.model_dump_json(indent=2) + "\n")
        seed_all(self.seed)

    def generator(self, *parts: int):
        """A torch generator seeded by (seed, ``parts``): the same numbers on every resumption."""
        return seeded_generator(self.seed, *parts)

    # -- checkpoints ---------------------------------------------------------------------------------------
    def checkpoint_path(self, name: str) -> Path:
        """Where the checkpoint of phase ``name`` lives (``/`` in the name becomes ``_``)."""
        return self.folder / "checkpoints" / f"{name.replace('/', '_')}.pt"

    def checkpoint(self, name: str, state: dict[str, Any], step: int) -> Path:
        """Atomically save ``state`` after ``step`` of phase ``name`` with the random states; emits a
        :class:`FitCheckpoint`. Returns the checkpoint path."""
        path = self.checkpoint_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": CHECKPOINT_FORMAT, "state": state, "step": int(step), "rng": rng_state()}
        tmp = path.with_suffix(".tmp")
        self.saver(payload, tmp)
        os.replace(tmp, path)
        self.emit(FitCheckpoint(phase=name, step=int(step), path=str(path)))
        return path

    def resume(self, name: str, map_location: Any = None) -> dict[str, Any] | None:
        """The last checkpoint of phase ``name`` as ``{"state": ..., "step": ...}`` with the random states it
        recorded restored, or None when the phase has none."""
        path = self.checkpoint_path(name)
        if not path.is_file():
            return None
        payload = self.loader(path, map_location)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise FitConfigError(f"checkpoint {path} was not written by this seiscore's fit mode; delete it to restart")
        set_rng_state(payload["rng"])
        return {"state": payload["state"], "step": payload["step"]}

    # -- events --------------------------------------------------------------------------------------------
    def emit(self, event: FitEvent) -> None:
        """Record ``event`` (``events.jsonl``; an epoch also in ``metrics.jsonl``), then pass it to the callback."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / EVENTS_FILE, "a") as f:
            f.write(event.model_dump_json() + "\n")
        if isinstance(event, FitEpoch):
            with open(self.folder / METRICS_FILE, "a") as f:
                f.write(json.dumps(event.row(), default=str) + "\n")
        if self.callback is not None:
            self.callback(event)

    # -- artifacts -----------------------------------------------------------------------------------------
    def write_artifact(
        self,
        name: str,
        tensors: dict[str, Any],
        card: dict[str, Any],
        *,
        format: str,
        format_version: int,
        data_hash: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> Path:
        """Write ``FOLDER/artifacts/NAME`` (replacing this run's earlier one); the card gets the run's config,
        seed and ``data_hash``. Emits a :class:`FitArtifact` with ``metrics``."""
        run_card = {"config": self._config_json(), "seed": self.seed}
        if data_hash is not None:
            run_card["data_hash"] = data_hash
        path = write_artifact(
            self.folder / "artifacts" / name,
            tensors,
            {**run_card, **card},
            format=format,
            format_version=format_version,
            overwrite=True,
        )
        self.emit(FitArtifact(name=name, path=str(path), metrics=metrics or {}))
        return path

    def done(self, artifacts: dict[str, Any] | None = None, summary: dict[str, Any] | None = None) -> None:
        """Emit :class:`FitDone`."""
        self.emit(FitDone(artifacts={k: str(v) for k, v in (artifacts or {}).items()}, summary=summary or {}))


def fit_method(
    spec: Any, folder: str | os.PathLike, *, seed: int = 0, callback: Callback | None = None
) -> dict[str, Any]:
    """Run (or resume) the fit of the ``fit``-mode method named by ``spec`` in ``folder``: a :class:`FitRun` on
    the parsed spec (its fields are the configuration a resumption must match), started, handed to
    ``method.fit(spec, run)``. Returns the method's summary."""
    from seiscore.methods.base import MethodConfigError
    from seiscore.methods.registry import get_method, parse_spec

    spec = parse_spec(spec)
    method = get_method(spec.name)
    if method.mode != "fit":
        raise MethodConfigError(f"method {spec.name!r} runs in mode {method.mode!r}, not fit")
    run = FitRun(folder, spec, seed=seed, callback=callback)
    run.start()
    return method.fit(spec, run)


def fit_preflight(
    method: str,
    folder: str | os.PathLike,
    params: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    settings: Any = None,
) -> tuple[Any, Path]:
    """``(spec, folder)`` of a fit run, checked before anything starts; each problem a one-line ``ValueError``.

    The spec is the method's defaults with the ``params`` overrides (an unknown method, a method that does not
    run in mode ``fit``, an unknown or invalid parameter are refused). The folder is resolved and must be a safe
    write target (:func:`seiscore.core.safety.check_write_target`, inside the data roots of ``SEIS_DATA_ROOTS``
    when set); an existing one must be empty or hold a fit run of the same configuration (the run resumes)."""
    from seiscore.core.safety import UnsafePathError, check_write_target, data_roots, is_owned
    from seiscore.core.settings import get_settings
    from seiscore.methods.base import MethodConfigError
    from seiscore.methods.registry import get_method, resolve_spec

    chosen = get_method(method)
    if chosen.mode != "fit":
        raise MethodConfigError(
            f"method {method!r} runs in mode {chosen.mode!r}, not fit: run it on a survey (seis run SURVEY --method "
            f"{method})",
            field="name",
        )
    spec = resolve_spec(None, method=method, params=params)
    roots = data_roots(None, settings if settings is not None else get_settings())
    target = check_write_target(folder, what="fit folder", roots=roots or None, replace=False)
    if target.exists() and not target.is_dir():
        raise UnsafePathError(f"fit folder {target} exists and is not a folder; choose another path")
    if target.is_dir() and any(target.iterdir()) and not (target / CONFIG_FILE).is_file() and not is_owned(target):
        raise UnsafePathError(
            f"fit folder {target} exists, is not empty and holds no fit run; refusing to write there: "
            "choose a new or empty folder"
        )
    FitRun(target, spec, seed=seed).check_same_run()
    return spec, target


# -- artifact folders ----------------------------------------------------------------------------------------
def _label(format: str) -> str:
    return format.removeprefix("seiscore-").upper()


def _a(label: str) -> str:
    """``label`` with its article: "an SSB", "a TINY" (initialisms read letter by letter)."""
    return f"{'an' if label[:1] in 'AEFHILMNORSX' else 'a'} {label}"


def is_artifact(folder: str | os.PathLike, format: str) -> bool:
    """True when ``folder`` holds a model card of ``format``."""
    try:
        return json.loads((Path(folder) / CARD).read_text()).get("format") == format
    except (OSError, ValueError, AttributeError):
        return False


def write_artifact(
    folder: str | os.PathLike,
    tensors: dict[str, Any],
    card: dict[str, Any],
    *,
    format: str,
    format_version: int,
    overwrite: bool = False,
) -> Path:
    """Write ``tensors`` (name -> torch tensor) and the model card atomically into ``folder``; return it.

    The card starts with format, format_version, seiscore_version, created and the tensor count, then
    ``card``. An existing folder is replaced only with ``overwrite`` and only when it is an artifact of
    the same format or the product's own (:func:`seiscore.core.safety.may_replace`)."""
    from safetensors.torch import save_file

    import seiscore
    from seiscore.core.safety import UnsafePathError, may_replace

    folder = Path(folder)
    label = _label(format)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"model artifact folder {folder} already exists; pass overwrite=True to replace it")
    if folder.exists() and not (is_artifact(folder, format) or may_replace(folder)):
        raise UnsafePathError(
            f"model artifact folder {folder} exists and is not {_a(label)} model artifact; refusing to "
            f"replace it whatever overwrite says: move it away or choose another folder"
        )
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {
        "format": format,
        "format_version": format_version,
        "seiscore_version": seiscore.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensors": len(tensors),
        **card,
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_file(tensors, str(tmp / TENSORS), metadata={"format": format, "format_version": str(format_version)})
        (tmp / CARD).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def read_card(folder: str | os.PathLike, *, format: str, format_version: int) -> dict[str, Any]:
    """The model card of an artifact folder after checking its format and version (one-line errors)."""
    import seiscore

    folder = Path(folder)
    label = _label(format)
    path = folder / CARD
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not {_a(label)} model artifact: {CARD} is missing")
    try:
        card = json.loads(path.read_text())
    except ValueError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != format:
        got = card.get("format") if isinstance(card, dict) else None
        raise ArtifactError(f"{path} describes format {got!r}, expected {format!r}")
    if card.get("format_version") != format_version:
        raise ArtifactError(
            f"{label} artifact {folder} has format version {card.get('format_version')}; "
            f"this seiscore ({seiscore.__version__}) reads version {format_version}: retrain or convert it"
        )
    return card


def read_artifact(
    folder: str | os.PathLike,
    *,
    format: str,
    format_version: int,
    expected: dict[str, tuple[int, ...]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(card, tensors)`` of an artifact folder, after :func:`read_card`; with ``expected`` (name -> shape)
    also that exactly those tensors are present with those shapes. Each problem is a one-line error
    naming the folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    label = _label(format)
    card = read_card(folder, format=format, format_version=format_version)
    if not (folder / TENSORS).is_file():
        raise FileNotFoundError(f"{label} artifact {folder} has a model card but no {TENSORS}")
    tensors = load_file(str(folder / TENSORS))
    if expected is not None:
        missing = [k for k in expected if k not in tensors]
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise ArtifactError(
                f"{label} artifact {folder / TENSORS} does not match its model card: "
                f"{len(missing)} missing tensor(s) {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}"
            )
        wrong = [
            f"{k} {tuple(tensors[k].shape)} != {tuple(shape)}"
            for k, shape in expected.items()
            if tuple(tensors[k].shape) != tuple(shape)
        ]
        if wrong:
            raise ArtifactError(f"{label} artifact {folder / TENSORS} has tensors of the wrong shape: {wrong[:5]}")
    return card, tensors
