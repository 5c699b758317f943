"""Three-stage SSB training with checkpoints, resume and per-epoch metrics.

Phases, in order (each a number of epochs of Adam on L1 / L1 + w TV(g)):

- ``base/swin``, ``base/dino`` (if ``train_base``): heads of experts *without* LoRA on the
  frozen backbones: the fair "base" the LoRA experts are compared with;
- per variant (``direct``, ``residual``): ``V/swin`` and ``V/dino`` (stage 1: LoRA + head of
  each expert, loss L1 of its denoised output), ``V/router`` (stage 2: router only, experts
  frozen, L1 + w TV(g)), ``V/joint`` (stage 3: adapters, heads and router together).

After every epoch the trainable state, optimiser and epoch are checkpointed
(``OUT/checkpoints/PHASE.pt``, written atomically) and a metrics line is appended to
``OUT/metrics.jsonl``; a rerun with the same configuration resumes after the last completed
epoch and reproduces an uninterrupted run (batches are drawn from generators seeded by
(seed, phase, epoch); the backbones have no stochastic layers). Artifacts: ``OUT/artifacts/base``,
``OUT/artifacts/V_router_only`` (stage-1 experts + stage-2 router) and ``OUT/artifacts/V_joint``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from seiscore.methods.ssb.artifacts import save_model
from seiscore.methods.ssb.config import EXPERTS, SSBModelConfig, StageConfig, TrainConfig
from seiscore.methods.ssb.data import HeldOut, PairSet, describe, heldout_set, training_pairs
from seiscore.methods.ssb.evaluation import summary
from seiscore.methods.ssb.inference import denoise_sections, pick_device
from seiscore.methods.ssb.model import SSBModel
from seiscore.methods.ssb.router import ssb_loss

Callback = Callable[[dict[str, Any]], None]


@dataclass
class Phase:
    name: str  # e.g. "direct/router"
    group: str  # model it trains: "base", "direct", "residual"
    part: str  # SSBModel.set_trainable argument
    stage: StageConfig
    index: int = 0

    @property
    def mode(self) -> str:
        return self.part.split(":")[1] if self.part.startswith("expert:") else "blend"


@dataclass
class TrainResult:
    output_dir: Path
    artifacts: dict[str, Path] = field(default_factory=dict)
    heldout: dict[str, dict[str, float]] = field(default_factory=dict)
    dataset_hash: str = ""


def plan(cfg: TrainConfig) -> list[Phase]:
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
    m = cfg.model
    if group == "base":
        return m.model_copy(
            update={e: m.expert(e).model_copy(update={"lora": None}) for e in EXPERTS} | {"residual": False}
        )
    return m.model_copy(update={"residual": group == "residual"})


def _state(model: SSBModel) -> dict[str, torch.Tensor]:
    """The adaptable state (adapters, heads, router): what training changes."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if ".backbone." not in k or "lora_" in k}


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _seeded_generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(parts)).generate_state(1)[0]))


class Trainer:
    def __init__(self, cfg: TrainConfig, callback: Callback | None = None):
        self.cfg, self.callback = cfg, callback or (lambda event: None)
        self.out = Path(cfg.output_dir)
        self.device = pick_device(cfg.device, allow_cpu=True)
        self.pairs: PairSet = training_pairs(cfg.data, cfg.model.patch)
        self.heldout: HeldOut = heldout_set(cfg.data)
        self.data_card = describe(cfg.data, self.pairs, self.heldout)

    def _emit(self, **event: Any) -> None:
        self.callback(event)

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
        order = torch.randperm(n, generator=_seeded_generator(self.cfg.seed, phase.index, epoch)).numpy()
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
            self._emit(event="step", phase=phase.name, epoch=epoch, step=step + 1, steps=steps, loss=losses[-1])
        return float(np.mean(losses))

    def run_phase(self, model: SSBModel, phase: Phase) -> None:
        ckpt_path = self.out / "checkpoints" / f"{phase.name.replace('/', '_')}.pt"
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        model.set_trainable(phase.part)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=phase.stage.lr)
        start = 0
        if ckpt_path.exists():
            ckpt = torch.load(ckpt_path, map_location=self.device, weights_only=False)
            model.load_state_dict(ckpt["state"], strict=False)
            opt.load_state_dict(ckpt["optimizer"])
            start = ckpt["epoch"] + 1
        steps = -(-self.pairs.noisy.shape[0] // phase.stage.batch_size)
        self._emit(event="phase_start", phase=phase.name, epochs=phase.stage.epochs, start_epoch=start, steps=steps)
        for epoch in range(start, phase.stage.epochs):
            t0 = time.perf_counter()
            train_loss = self._epoch(model, phase, opt, epoch)
            metrics = {
                "phase": phase.name,
                "epoch": epoch,
                "train_loss": train_loss,
                "seconds": time.perf_counter() - t0,
                **{f"heldout_{k}": v for k, v in self.evaluate(model, phase.mode, subset=True).items()},
            }
            _save_checkpoint(
                ckpt_path, {"state": _state(model), "optimizer": opt.state_dict(), "epoch": epoch, "metrics": metrics}
            )
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
            self._emit(event="epoch", **metrics)

    def _save(self, model: SSBModel, name: str, result: TrainResult, modes: tuple[str, ...]) -> None:
        heldout = {m: self.evaluate(model, m) for m in modes}
        result.heldout.update({f"{name}:{m}": v for m, v in heldout.items()})
        card = {
            "name": name,
            "training": {"data": self.data_card, "config": json.loads(self.cfg.model_dump_json())},
            "heldout_metrics": heldout,
            "gate_statistics": {k: v for k, v in heldout.get("blend", {}).items() if k.startswith("gate_")},
        }
        result.artifacts[name] = save_model(model, self.out / "artifacts" / name, card, overwrite=True)
        self._emit(event="artifact", name=name, path=str(result.artifacts[name]), heldout=heldout)

    def _check_same_run(self) -> None:
        """Refuse to resume checkpoints written under another configuration (device / threads may differ)."""
        path = self.out / "train_config.json"
        if not path.is_file():
            return
        volatile = {"device", "threads", "output_dir"}
        old = {k: v for k, v in json.loads(path.read_text()).items() if k not in volatile}
        new = {k: v for k, v in json.loads(self.cfg.model_dump_json()).items() if k not in volatile}
        if old != new:
            changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            raise ValueError(
                f"{self.out} holds a training run with another configuration (differs in {changed}); "
                "use a new output_dir or delete the old run"
            )

    def run(self) -> TrainResult:
        self._check_same_run()
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.out / "train_config.json").write_text(self.cfg.model_dump_json(indent=2) + "\n")
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
        self._emit(event="done", artifacts={k: str(v) for k, v in result.artifacts.items()})
        return result


def train(cfg: TrainConfig, callback: Callback | None = None) -> TrainResult:
    """Run (or resume) every phase of ``cfg``; ``callback(event_dict)`` sees steps, epochs and artifacts."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return Trainer(cfg, callback).run()
