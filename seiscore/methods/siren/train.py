"""Joint fit of the SIREN decoder and the latent table (run mode ``fit``), and loading its artifact.

Objective (spec section 2.2, DeepSDF's auto-decoder)::

    min_{theta, Z}  (1/N) sum_i [ mean_p (f_theta(x_p, z_i) - v_n,i(x_p))^2 + lam ||z_i||^2 ]

on normalised velocities ``v_n = (v - vmin) / (vmax - vmin)``. Each epoch visits the models in an order drawn
from a generator seeded by (run seed, epoch), in minibatches of ``batch_maps`` models with all their points;
Adam with two parameter groups (decoder ``lr_decoder``, latents ``lr_latent``); ReduceLROnPlateau on the epoch
loss (the mean of the per-model objective). Every ``checkpoint_every`` epochs (and after the last) the decoder,
the latents, the optimiser and the scheduler are checkpointed through :class:`~seiscore.execution.fit.FitRun`, so a
resumed run is bit-identical to an uninterrupted one. The artifact ``RUN/artifacts/decoder`` (format
``seiscore-siren-decoder`` version 1) holds the decoder's tensors (``decoder.<name>``) and the training latents
(``latents``); its card the configuration, the training data's hash, the model names, grid and the measured
training quality (MSE_n, PSNR_g).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from seiscore.data.velocity import VelocityGrid, default_names, validate_models
from seiscore.execution.fit import FitEpoch, FitRun, FitStart, read_artifact, read_card
from seiscore.methods.siren.config import AutoDecoderConfig
from seiscore.methods.siren.model import VelocityAutoDecoder
from seiscore.nn.siren import grid_coordinates

FORMAT, FORMAT_VERSION = "seiscore-siren-decoder", 1
PHASE = "siren"
ARTIFACT = "decoder"
# Spec section 3: MSE_n and PSNR_g on v_n = (v - 1500) / 3000, whatever the training normalisation.
METRIC_VMIN, METRIC_RANGE = 1500.0, 3000.0


def data_hash(models: np.ndarray) -> str:
    """SHA-256 of a collection's shape and float32 values (the model card's training-data hash)."""
    arr = np.ascontiguousarray(models, dtype=np.float32)
    h = hashlib.sha256(json.dumps(list(arr.shape)).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def mse_normalised(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-model ``MSE_n = mean(((pred - true) / 3000)^2)`` (spec section 3), ``(N,)`` float64."""
    diff = (np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)) / METRIC_RANGE
    return (diff.reshape(diff.shape[0], -1) ** 2).mean(axis=1)


def psnr_global(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-model ``PSNR_g = 10 log10(1 / MSE_n)`` dB, ``(N,)``."""
    return 10.0 * np.log10(1.0 / np.maximum(mse_normalised(pred, true), 1e-30))


def quality(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Mean and std of MSE_n and PSNR_g over models."""
    mse, psnr = mse_normalised(pred, true), psnr_global(pred, true)
    return {
        "mse_n": float(mse.mean()),
        "mse_n_std": float(mse.std()),
        "psnr_g": float(psnr.mean()),
        "psnr_g_std": float(psnr.std()),
        "psnr_g_min": float(psnr.min()),
    }


def _device(config: AutoDecoderConfig) -> torch.device:
    if config.threads:
        torch.set_num_threads(config.threads)
    return torch.device(config.device)


def _optimiser(model: VelocityAutoDecoder, latents: torch.nn.Parameter, config: AutoDecoderConfig):
    opt = torch.optim.Adam(
        [
            {"params": list(model.parameters()), "lr": config.lr_decoder},
            {"params": [latents], "lr": config.lr_latent},
        ]
    )
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=config.factor, patience=config.patience)
    return opt, sched


def objective(pred: torch.Tensor, target: torch.Tensor, z: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-model ``mean_p (pred - target)^2 + lam ||z||^2``, ``(B,)``."""
    return ((pred - target) ** 2).mean(dim=1) + lam * (z**2).sum(dim=1)


def fit_autodecoder(
    models: np.ndarray,
    names: Sequence[str] | None,
    config: AutoDecoderConfig,
    run: FitRun,
    grid: VelocityGrid | None = None,
) -> dict[str, Any]:
    """Fit decoder and latents of ``config`` on ``models`` ``(N, nz, nx)`` m/s (validated, never modified) in
    ``run`` (started here when it is not yet), resuming from its last checkpoint; writes the artifact
    ``run.folder/artifacts/decoder``. Returns a summary: artifact path, epochs, final loss, training quality,
    data hash, seconds."""
    t_start = time.perf_counter()
    if not run.config_path.is_file():
        run.start()
    arr = validate_models(models, names)
    n, nz, nx = arr.shape
    names = list(names) if names is not None else default_names(n)
    device = _device(config)
    coords = grid_coordinates((nz, nx), device=device)
    target = torch.as_tensor((arr.reshape(n, -1) - config.vmin) / config.vrange, dtype=torch.float32).to(device)

    model = VelocityAutoDecoder(config, generator=run.generator(0)).to(device)
    init = torch.randn(n, config.latent_dim, generator=run.generator(1)) * config.sigma
    latents = torch.nn.Parameter(init.to(device))
    opt, sched = _optimiser(model, latents, config)
    start, loss = 0, math.nan
    ckpt = run.resume(PHASE, map_location=device)
    if ckpt is not None:
        state = ckpt["state"]
        if tuple(state["latents"].shape) != (n, config.latent_dim):
            raise ValueError(
                f"checkpoint in {run.folder} has {tuple(state['latents'].shape)} latents, the data "
                f"{(n, config.latent_dim)}: another collection; use a new folder"
            )
        model.load_state_dict(state["model"])
        with torch.no_grad():
            latents.copy_(state["latents"].to(device))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, loss = ckpt["step"] + 1, float(state["loss"])

    bs = min(config.batch_maps, n)
    run.emit(FitStart(phase=PHASE, epochs=config.epochs, start_epoch=start, steps=0))
    for epoch in range(start, config.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=run.generator(2, epoch)).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        model.train()
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            z = latents[idx]
            per_model = objective(model(coords, z), target[idx], z, config.lam)
            batch_loss = per_model.mean()
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            total += per_model.detach().sum().double()
        loss = float(total) / n
        sched.step(loss)
        metrics = {"loss": loss, "lr_decoder": opt.param_groups[0]["lr"], "lr_latent": opt.param_groups[1]["lr"]}
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs:
            state = {
                "model": model.state_dict(),
                "latents": latents.detach().clone(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "loss": loss,
            }
            run.checkpoint(PHASE, state, epoch)
        run.emit(FitEpoch(phase=PHASE, epoch=epoch, metrics=metrics, seconds=time.perf_counter() - t0))

    model.eval()
    decoded = model.decode(latents.detach(), shape=(nz, nx))
    measured = quality(decoded, arr)
    card = {
        "autodecoder": json.loads(config.model_dump_json()),
        "n_models": n,
        "names": names,
        "shape": [nz, nx],
        "grid": (grid or VelocityGrid()).model_dump(),
        "n_parameters": model.decoder.n_parameters(),
        "training": {"epochs": config.epochs, "final_loss": loss, **measured},
    }
    tensors = {f"decoder.{k}": v for k, v in model.decoder.state_dict().items()}
    tensors["latents"] = latents.detach()
    digest = data_hash(arr)
    path = run.write_artifact(
        ARTIFACT, tensors, card, format=FORMAT, format_version=FORMAT_VERSION, data_hash=digest, metrics=measured
    )
    summary = {
        "artifact": str(path),
        "epochs": config.epochs,
        "final_loss": loss,
        "data_hash": digest,
        "seconds": time.perf_counter() - t_start,
        **measured,
    }
    run.done({ARTIFACT: path}, summary)
    return summary


def load_decoder(folder) -> tuple[VelocityAutoDecoder, dict[str, Any]]:
    """``(decoder, card)`` of a fit's artifact folder (``RUN/artifacts/decoder`` or the run folder itself), on the
    CPU in eval mode, its training latents as ``decoder.latents`` ``(N, L)``. Wrong format or version, missing
    or misshapen tensors: one-line errors naming the folder."""
    folder = Path(folder)
    if not (folder / "model_card.json").is_file() and (folder / "artifacts" / ARTIFACT).is_dir():
        folder = folder / "artifacts" / ARTIFACT
    card = read_card(folder, format=FORMAT, format_version=FORMAT_VERSION)
    config = AutoDecoderConfig.model_validate(card["autodecoder"])
    expected = {f"decoder.{k}": s for k, s in config.parameter_shapes().items()}
    expected["latents"] = (int(card["n_models"]), config.latent_dim)
    card, tensors = read_artifact(folder, format=FORMAT, format_version=FORMAT_VERSION, expected=expected)
    model = VelocityAutoDecoder(config)
    model.decoder.load_state_dict({k.removeprefix("decoder."): v for k, v in tensors.items() if k != "latents"})
    model.latents = tensors["latents"].float()
    return model.eval(), card
