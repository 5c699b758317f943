"""Three-stage SSB training with checkpoints, resume and per-epoch metrics.

Phases, in order (each a number of epochs of Adam on L1 / L1 + w TV(g)):

- ``base/swin``, ``base/dino`` (if ``train_base``): heads of experts *without* LoRA on the
  frozen backbones: the fair "base" the LoRA experts are compared with;
- per variant (``direct``, ``residual``): ``V/swin`` and ``V/dino`` (stage 1: LoRA + head of
  each expert, loss L1 of its denoised output), ``V/router`` (stage 2: router only, experts
  frozen, L1 + w TV(g)), ``V/joint`` (stage 3: adapters, heads and router together).

The run is a fit (:class:`seiscore.execution.fit.FitRun`): after every epoch the trainable state,
optimiser and epoch are checkpointed (``OUT/checkpoints/PHASE.pt``, written atomically, with the
random states) and a metrics line is appended to ``OUT/metrics.jsonl``; a rerun with the same
configuration (``OUT/train_config.json``) resumes after the last completed epoch and reproduces an
uninterrupted run (batches are drawn from generators seeded by (seed, phase, epoch); the backbones
have no stochastic layers). Progress goes to the callback as typed fit events (``start``, ``step``,
``epoch``, ``checkpoint``, ``artifact``, ``done``) and to ``OUT/events.jsonl``. Artifacts: ``OUT/artifacts/base``,
``OUT/artifacts/V_router_only`` (stage-1 experts + stage-2 router) and ``OUT/artifacts/V_joint``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seiscore.execution.fit import Callback, FitEpoch, FitRun, FitStart, FitStep
from seiscore.methods.ssb.artifacts import FORMAT, FORMAT_VERSION, model_card, model_tensors
from seiscore.methods.ssb.config import EXPERTS, SSBModelConfig, StageConfig, TrainConfig
from seiscore.methods.ssb.data import HeldOut, PairSet, describe, heldout_set, training_pairs
from seiscore.methods.ssb.evaluation import summary
from seiscore.methods.ssb.inference import denoise_sections, pick_device
from seiscore.methods.ssb.model import SSBModel
from seiscore.methods.ssb.router import ssb_loss


@dataclass
class Phase:
    """One training phase: which model group, which part trains, its stage settings."""

    name: str  # e.g. "direct/router"
    group: str  # model it trains: "base", "direct", "residual"
    part: str  # SSBModel.set_trainable argument
    stage: StageConfig
    index: int = 0

    @property
    def mode(self) -> str:
        """Forward mode of the phase: the expert it trains, else ``"blend"``."""
        return self.part.split(":")[1] if self.part.startswith("expert:") else "blend"


@dataclass
class TrainResult:
    """Output folder, artifact folders by name, held-out scores and the training data hash of a run."""

    output_dir: Path
    artifacts: dict[str, Path] = field(default_factory=dict)
    heldout: dict[str, dict[str, float]] = field(default_factory=dict)
    dataset_hash: str = ""


def plan(cfg: TrainConfig) -> list[Phase]:
    """The phases of ``cfg`` in order (base experts, then per variant: experts, router, joint)."""
    phases = []
    if cfg.train_base:
        phases += [Phase(f"base/{e}", "base", f"expert:{e}", cfg.expert_stage) for e in EXPERTS]
    for v in cfg.variants:
        phases += [Phase(f"{v}/{e}", v, f"expert:{e}", cfg.expert_stage) for e in EXPERTS]
        phases += [
            Phase(f"{v}/router", v, "router", cfg.router_stage),
            Phase(f"{v}/joint", v, "joint", cfg.joint_stage),
        ]
    for i, p in enumerate(phases):
        p.index = i
    return phases


def group_config(cfg: TrainConfig, group: str) -> SSBModelConfig:
    """Model configuration of a group: ``base`` (no LoRA, not residual), ``direct`` or ``residual``."""
    m = cfg.model
    if group == "base":
        return m.model_copy(
            update={e: m.expert(e).model_copy(update={"lora": None}) for e in EXPERTS} | {"residual": False}
        )
    return m.model_copy(update={"residual": group == "residual"})


def _state(model: SSBModel) -> dict[str, torch.Tensor]:
    """The adaptable state (adapters, heads, router): what training changes."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if ".backbone." not in k or "lora_" in k}


class Trainer:
    """The three-stage SSB training of ``cfg`` as one fit run in ``cfg.output_dir``."""

    def __init__(self, cfg: TrainConfig, callback: Callback | None = None):
        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.fit = FitRun(self.out, cfg, seed=cfg.seed, callback=callback, config_file="train_config.json")
        self.device = pick_device(cfg.device, allow_cpu=True)
        self.pairs: PairSet = training_pairs(cfg.data, cfg.model.patch)
        self.heldout: HeldOut = heldout_set(cfg.data)
        self.data_card = describe(cfg.data, self.pairs, self.heldout)

    def evaluate(self, model: SSBModel, mode: str = "blend", subset: bool = False) -> dict[str, float]:
        """Held-out scores; ``subset``: only every k-th section (per-epoch monitoring, ``epoch_eval_sections``)."""
        n = self.heldout.noisy.shape[0]
        pick = (
            np.linspace(0, n - 1, min(n, self.cfg.epoch_eval_sections)).round().astype(int) if subset else slice(None)
        )
        noisy, clean = self.heldout.noisy[pick], self.heldout.clean[pick]
        res = denoise_sections(noisy, model, batch_size=64, device=self.device, mode=mode, return_gate=mode == "blend")
        est, gate = res if mode == "blend" else (res, None)
        return summary(clean, est, gate)

    def _epoch(self, model: SSBModel, phase: Phase, opt: torch.optim.Optimizer, epoch: int) -> float:
        n = self.pairs.noisy.shape[0]
        bs = phase.stage.batch_size
        order = torch.randperm(n, generator=self.fit.generator(phase.index, epoch)).numpy()
        steps = -(-n // bs)
        losses = []
        model.train()
        for step in range(steps):
            idx = np.sort(order[step * bs : (step + 1) * bs])
            x = torch.as_tensor(self.pairs.noisy[idx], device=self.device)
            y = torch.as_tensor(self.pairs.clean[idx], device=self.device)
            res = model(x, mode=phase.mode)
            loss = ssb_loss(res.denoised, y, res.gate, model.cfg.router.tv_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            self.fit.emit(FitStep(phase=phase.name, epoch=epoch, step=step + 1, steps=steps, loss=losses[-1]))
        return float(np.mean(losses))

    def run_phase(self, model: SSBModel, phase: Phase) -> None:
        """Train ``phase`` from its last checkpoint (if any) to its last epoch, checkpointing every epoch."""
        model.set_trainable(phase.part)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=phase.stage.lr)
        start = 0
        ckpt = self.fit.resume(phase.name, map_location=self.device)
        if ckpt is not None:
            model.load_state_dict(ckpt["state"]["model"], strict=False)
            opt.load_state_dict(ckpt["state"]["optimizer"])
            start = ckpt["step"] + 1
        steps = -(-self.pairs.noisy.shape[0] // phase.stage.batch_size)
        self.fit.emit(FitStart(phase=phase.name, epochs=phase.stage.epochs, start_epoch=start, steps=steps))
        for epoch in range(start, phase.stage.epochs):
            t0 = time.perf_counter()
            train_loss = self._epoch(model, phase, opt, epoch)
            metrics = {
                "train_loss": train_loss,
                **{f"heldout_{k}": v for k, v in self.evaluate(model, phase.mode, subset=True).items()},
            }
            event = FitEpoch(phase=phase.name, epoch=epoch, metrics=metrics, seconds=time.perf_counter() - t0)
            self.fit.checkpoint(
                phase.name, {"model": _state(model), "optimizer": opt.state_dict(), "metrics": event.row()}, epoch
            )
            self.fit.emit(event)  # also the line of OUT/metrics.jsonl

    def _save(self, model: SSBModel, name: str, result: TrainResult, modes: tuple[str, ...]) -> None:
        heldout = {m: self.evaluate(model, m) for m in modes}
        result.heldout.update({f"{name}:{m}": v for m, v in heldout.items()})
        card = {
            **model_card(model),
            "name": name,
            "training": {"data": self.data_card, "config": json.loads(self.cfg.model_dump_json())},
            "heldout_metrics": heldout,
            "gate_statistics": {k: v for k, v in heldout.get("blend", {}).items() if k.startswith("gate_")},
        }
        result.artifacts[name] = self.fit.write_artifact(
            name,
            model_tensors(model),
            card,
            format=FORMAT,
            format_version=FORMAT_VERSION,
            data_hash=self.data_card["hash"],
            metrics=heldout,
        )

    def run(self) -> TrainResult:
        """Run (or resume) every phase and save the artifacts."""
        self.fit.start()  # refuses a folder holding a run of another configuration
        result = TrainResult(self.out, dataset_hash=self.data_card["hash"])
        models: dict[str, SSBModel] = {}
        for phase in plan(self.cfg):
            if phase.group not in models:
                models[phase.group] = SSBModel(group_config(self.cfg, phase.group)).to(self.device)
            model = models[phase.group]
            self.run_phase(model, phase)
            if phase.name == "base/dino":
                self._save(model, "base", result, EXPERTS)
            elif phase.part == "router":
                self._save(model, f"{phase.group}_router_only", result, (*EXPERTS, "blend"))
            elif phase.part == "joint":
                self._save(model, f"{phase.group}_joint", result, (*EXPERTS, "blend"))
        self.fit.done(result.artifacts, {"dataset_hash": result.dataset_hash})
        return result


def train(cfg: TrainConfig, callback: Callback | None = None) -> TrainResult:
    """Run (or resume) every phase of ``cfg``; ``callback(event)`` sees the typed fit events
    (:mod:`seiscore.execution.fit`): phase starts, steps, epochs, checkpoints, artifacts, done."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return Trainer(cfg, callback).run()
