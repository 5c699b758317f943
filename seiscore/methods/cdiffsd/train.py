"""Seeded, resumable CDiffSD training through the fit mode (:class:`seiscore.execution.fit.FitRun`).

Data (spec §2.6): clean events and noise windows, each scaled to unit peak over its three components; every step
pairs a batch of events with *random* noise windows ("random coupling") at a peak ratio ``r ~ U{rnf}/100``:
``y = x0 + r n``. Events and noise come from :mod:`seiscore.data.quake_synth` (``n_train`` events with noise from
the first 80 % of the real records; ``n_val`` fixed validation pairs with noise from the last 20 %), or from two
trace stores (``clean_store``, ``noise_store``; the last ``n_val`` windows of each are the validation pairs).

Optimisation: Adam; the learning rate follows a cosine decay over all steps (``lr_schedule="cosine"``), the
released code's StepLR (x0.1 every 5 epochs, ``"legacy"``) or stays constant; the loss is the two-pass loss of
:mod:`seiscore.methods.cdiffsd.loss`. Batch order, noise coupling, ratios and diffusion steps of epoch ``e`` come
from a generator seeded by (seed, e), so a run resumed from its checkpoint (written after every epoch, with the
optimiser and the random states) ends with the same weights as an uninterrupted one.

Validation after each epoch on the fixed pairs: the ``direct`` output's mean L1 error on the normalised windows
(``val_loss``, which selects the best epoch, as released: keep the best validation loss) and the mean
reconstruction SNR of the noisy input and of ``direct`` (``10 log10(Σ x0² / Σ (x0 - x̂)²)`` per window over its
three components), and of ``sampling`` with ``val_sampling``. The best epoch's weights are written as the artifact
``RUN/artifacts/model`` (model card: configuration, seed, data hash, validation metrics, best epoch).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import numpy as np
import torch

from seiscore.core.torch_threads import torch_threads
from seiscore.execution.fit import FitEpoch, FitRun, FitStart, FitStep
from seiscore.methods.cdiffsd.config import CDiffSDError
from seiscore.methods.cdiffsd.loss import unfolded_loss
from seiscore.methods.cdiffsd.model import FORMAT, FORMAT_VERSION, CDiffSDModel

PHASE = "train"
ARTIFACT = "model"


def unit_peak(x: np.ndarray) -> np.ndarray:
    """Each 3-C window of ``x`` [n, 3, L] divided by its max |x| over the three components (float32, a copy;
    all-zero windows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    peak = np.abs(x).max(axis=(1, 2), keepdims=True)
    return np.divide(x, peak, out=np.zeros_like(x), where=peak > 0)


def snr_db(clean: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Reconstruction SNR per window over its three components: ``10 log10(Σ x0² / Σ (x0 - x̂)²)`` (dB)."""
    c = np.asarray(clean, dtype=np.float64)
    err = ((c - np.asarray(estimate, dtype=np.float64)) ** 2).sum(axis=(1, 2))
    return 10.0 * np.log10((c**2).sum(axis=(1, 2)) / np.maximum(err, 1e-30))


class TrainingData:
    """Training events and noise (unit peak), fixed validation pairs, and the hash of all of them."""

    def __init__(self, events: np.ndarray, noise: np.ndarray, val_clean: np.ndarray, val_noisy: np.ndarray):
        self.events, self.noise = unit_peak(events), unit_peak(noise)
        self.val_clean, self.val_noisy = np.asarray(val_clean, np.float32), np.asarray(val_noisy, np.float32)
        for name, arr in (("events", self.events), ("noise", self.noise), ("validation", self.val_noisy)):
            bad = ~np.isfinite(arr).all(axis=(1, 2))
            if bad.any():
                raise CDiffSDError(f"CDiffSD training {name} window {int(np.flatnonzero(bad)[0])} has NaN/Inf samples")
        h = hashlib.sha256()
        for arr in (self.events, self.noise, self.val_clean, self.val_noisy):
            h.update(np.ascontiguousarray(arr).tobytes())
        self.hash = h.hexdigest()[:16]

    @classmethod
    def synthetic(cls, params, seed: int) -> TrainingData:
        """``n_train`` synthetic events and noise windows (real noise from the records' training part) and
        ``n_val`` validation pairs (real noise from the test part), all drawn from ``seed``."""
        from seiscore.data.quake_synth import make_events, make_noise, make_pairs

        s_ev, s_noise, s_val = np.random.SeedSequence([int(seed), 14]).spawn(3)
        fs, length = params.sampling_rate, params.length
        events = make_events(params.n_train, s_ev, length=length, fs=fs).clean
        noise = make_noise(params.n_train, s_noise, length=length, fs=fs, split="train")
        val = make_pairs(
            params.n_val, int(s_val.generate_state(1)[0]), length=length, fs=fs, rnf=params.rnf, split="test"
        )
        return cls(events, noise, val.clean, val.noisy)

    @classmethod
    def stores(cls, params, seed: int) -> TrainingData:
        """Clean events and noise from two trace stores; their last ``n_val`` windows make the validation pairs
        (ratios drawn from ``seed``)."""
        from seiscore.data.traces import read_trace_store

        clean = read_trace_store(params.clean_store).data
        noise = read_trace_store(params.noise_store).data
        for what, arr in (("clean_store", clean), ("noise_store", noise)):
            if arr.shape[0] <= params.n_val or arr.shape[-1] != params.length:
                raise CDiffSDError(
                    f"CDiffSD {what} has {arr.shape[0]} windows of {arr.shape[-1]} samples; need more than "
                    f"n_val={params.n_val} windows of length {params.length}"
                )
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 15]))
        vc, vn = unit_peak(clean[-params.n_val :]), unit_peak(noise[-params.n_val :])
        lo, hi = params.rnf
        r = rng.integers(lo, hi + 1, size=params.n_val).astype(np.float32) / 100.0
        return cls(clean[: -params.n_val], noise[: -params.n_val], vc, vc + r[:, None, None] * vn)


def learning_rate(params, epoch: int, step: int, steps: int) -> float:
    """The learning rate of ``step`` in ``epoch``: cosine decay over all steps, StepLR (legacy) or constant."""
    if params.lr_schedule == "cosine":
        k, total = epoch * steps + step, max(params.epochs * steps, 1)
        return params.lr * 0.5 * (1.0 + math.cos(math.pi * k / total))
    if params.lr_schedule == "legacy":
        return params.lr * 0.1 ** (epoch // 5)
    return params.lr


def epoch_batches(data: TrainingData, params, generator: torch.Generator, steps: int):
    """The (clean, noisy) training batches of one epoch: events in a random order (repeated as needed),
    each paired with random noise windows at random peak ratios ``U{rnf}/100``."""
    n, bs = data.events.shape[0], params.batch_size
    need = steps * bs
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(-(-need // n))])[:need]
    noise_idx = torch.randint(0, data.noise.shape[0], (need,), generator=generator)
    lo, hi = params.rnf
    ratio = torch.randint(lo, hi + 1, (need,), generator=generator).to(torch.float32) / 100.0
    events, noise = torch.from_numpy(data.events), torch.from_numpy(data.noise)
    for k in range(steps):
        sl = slice(k * bs, (k + 1) * bs)
        x0 = events[order[sl]]
        yield x0, x0 + ratio[sl, None, None] * noise[noise_idx[sl]]


def validate(model: CDiffSDModel, data: TrainingData, *, sampling: bool, batch: int = 64) -> dict[str, float]:
    """Validation metrics of ``model`` on the fixed pairs (see the module docstring)."""
    clean, noisy = data.val_clean, data.val_noisy
    out = model.denoise(noisy, "direct", batch_size=batch)
    peak = np.maximum(np.abs(noisy).max(axis=(1, 2)), 1e-30)[:, None, None]
    metrics = {
        "val_loss": float(np.mean(np.abs(out - clean) / peak)),
        "val_snr_noisy": float(np.mean(snr_db(clean, noisy))),
        "val_snr_direct": float(np.mean(snr_db(clean, out))),
    }
    if sampling:
        metrics["val_snr_sampling"] = float(np.mean(snr_db(clean, model.denoise(noisy, "sampling", batch_size=batch))))
    return metrics


def train(params, run: FitRun, data: TrainingData | None = None) -> dict[str, Any]:
    """Train (or resume) the CDiffSD model of ``params`` (:class:`~seiscore.methods.cdiffsd.method.
    CDiffSDTrainParams`) in ``run``; returns the summary (artifact folder, best epoch, validation metrics)."""
    from seiscore.execution.resources import require_gpu

    device = require_gpu(params.allow_cpu, "CDiffSD training", requested=params.device)
    cfg = params.model_config_only()
    with torch_threads(params.threads):
        if data is None:
            data = (
                TrainingData.stores(params, run.seed)
                if params.clean_store
                else TrainingData.synthetic(params, run.seed)
            )
        model = CDiffSDModel(cfg, seed=run.seed).to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=params.lr)
        steps = params.steps_per_epoch or max(1, -(-data.events.shape[0] // params.batch_size))
        start, best, history = 0, {"epoch": -1, "val_loss": math.inf, "metrics": {}}, []
        best_state = None
        saved = run.resume(PHASE, map_location=device)
        if saved is not None:
            state = saved["state"]
            model.nets.load_state_dict(state["nets"])
            optimiser.load_state_dict(state["optimiser"])
            start, best, history, best_state = state["epoch"], state["best"], state["history"], state["best_state"]
        run.emit(FitStart(phase=PHASE, epochs=params.epochs, start_epoch=start, steps=steps))
        for epoch in range(start, params.epochs):
            t0 = time.perf_counter()
            gen = run.generator(1, epoch)
            model.nets.train()
            losses = []
            for k, (x0, y) in enumerate(epoch_batches(data, params, gen, steps)):
                for group in optimiser.param_groups:
                    group["lr"] = learning_rate(params, epoch, k, steps)
                loss, _ = unfolded_loss(
                    model,
                    model.schedule,
                    x0.to(device),
                    y.to(device),
                    gen,
                    penalty=params.penalty,
                    kind=params.loss,
                    legacy_unfold=params.legacy_unfold,
                    unfold_step=params.unfold_step,
                )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
                run.emit(FitStep(phase=PHASE, epoch=epoch, step=k + 1, steps=steps, loss=losses[-1]))
            metrics = {"train_loss": float(np.mean(losses)), **validate(model, data, sampling=params.val_sampling)}
            history.append(metrics)
            if metrics["val_loss"] < best["val_loss"]:
                best = {"epoch": epoch, "val_loss": metrics["val_loss"], "metrics": metrics}
                best_state = {k: v.detach().cpu().clone() for k, v in model.nets.state_dict().items()}
            run.emit(FitEpoch(phase=PHASE, epoch=epoch, metrics=metrics, seconds=time.perf_counter() - t0))
            run.checkpoint(
                PHASE,
                {
                    "nets": model.nets.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "epoch": epoch + 1,
                    "best": best,
                    "best_state": best_state,
                    "history": history,
                },
                step=epoch + 1,
            )
        final = CDiffSDModel(cfg)
        final.nets.load_state_dict(best_state if best_state is not None else model.nets.state_dict())
        card = {
            "model_config": cfg.model_dump(mode="json"),
            "parameters": final.n_parameters(),
            "best_epoch": best["epoch"],
            "val_metrics": best["metrics"],
            "history": history,
            "data": {
                "source": "stores" if params.clean_store else "quake_synth",
                "n_train": int(data.events.shape[0]),
                "n_val": int(data.val_clean.shape[0]),
                "rnf": list(params.rnf),
            },
        }
        path = run.write_artifact(
            ARTIFACT,
            final.tensors(),
            card,
            format=FORMAT,
            format_version=FORMAT_VERSION,
            data_hash=data.hash,
            metrics=best["metrics"],
        )
    summary = {
        "artifact": str(path),
        "best_epoch": best["epoch"],
        "val": best["metrics"],
        "epochs": params.epochs,
        "data_hash": data.hash,
        "parameters": final.n_parameters(),
    }
    run.done({ARTIFACT: path}, summary)
    return summary
