"""A trained CDiffSD model: ``denoise`` of batches of 3-C windows, and exact save / load as an artifact folder.

``CDiffSDModel.denoise(x)`` takes float32 ``[B, 3, W]`` windows (components Z, N, E), normalises each window
(event) by its maximum absolute value over the three components (relative component amplitudes are kept, as in
the released code), runs the ``direct`` estimate or the cold ``sampling`` chain in batches, and multiplies the
scale back. An all-zero window stays zero; a non-finite sample is refused naming the window. ``W`` must be a
multiple of the U-Net's down-sampling (8 by default); the models are trained at ``config.length`` (3000).

Artifacts (:mod:`seiscore.execution.fit`): ``model.safetensors`` (the U-Nets' weights, ``net{i}.*``) and
``model_card.json`` (format ``seiscore-cdiffsd`` version :data:`FORMAT_VERSION`, ``model_config``, and what the
trainer adds: run configuration, seed, data hash, validation metrics). Loading rebuilds the networks from the card
and checks every tensor's name and shape, so outputs after :meth:`CDiffSDModel.load` equal those before
:meth:`CDiffSDModel.save` bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import ValidationError

from seiscore.core.torch_threads import torch_threads
from seiscore.methods.cdiffsd.config import CDiffSDConfig, CDiffSDError
from seiscore.methods.cdiffsd.sampler import cold_sample, direct
from seiscore.methods.cdiffsd.schedule import ColdSchedule
from seiscore.methods.cdiffsd.unet1d import build_nets

FORMAT, FORMAT_VERSION = "seiscore-cdiffsd", 1
Mode = Literal["direct", "sampling"]


class CDiffSDModel:
    """The U-Net(s) of a :class:`CDiffSDConfig` with its :class:`ColdSchedule`."""

    def __init__(self, config: CDiffSDConfig, nets: torch.nn.ModuleList | None = None, *, seed: int = 0):
        self.config = config
        self.schedule = ColdSchedule.from_config(config)
        if nets is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                nets = build_nets(config)
        self.nets = nets
        self.card: dict[str, Any] = {}

    # -- the network R(x, t) on 3-C windows -------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``R(x, t)`` on 3-C windows ``x`` [B, 3, L]: each component through its own single-channel U-Net
        (``channels=1``) or all three through the 3-channel one."""
        if self.config.channels == 3:
            return self.nets[0](x, t)
        return torch.cat([net(x[:, c : c + 1], t) for c, net in enumerate(self.nets)], dim=1)

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return next(self.nets.parameters()).device

    def to(self, device: str | torch.device) -> CDiffSDModel:
        """Move the weights to ``device``; returns self."""
        self.nets.to(device)
        return self

    def parameters(self):
        """The trainable parameters of every U-Net."""
        return self.nets.parameters()

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.nets.parameters())

    # -- inference --------------------------------------------------------------------------------------------
    def denoise_normalised(self, y: torch.Tensor, mode: Mode = "direct") -> torch.Tensor:
        """``direct`` or ``sampling`` on already normalised windows (a tensor on the model's device)."""
        if mode == "direct":
            return direct(self, self.schedule, y)
        if mode == "sampling":
            return cold_sample(self, self.schedule, y, evaluations=self.config.sampling_steps)
        raise CDiffSDError(f"unknown CDiffSD mode {mode!r}: 'direct' or 'sampling'")

    def denoise(
        self,
        x: np.ndarray,
        mode: Mode = "direct",
        batch_size: int = 64,
        *,
        threads: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Denoised float32 ``[B, 3, W]`` windows of ``x`` (same shape; ``x`` is not modified).

        Each window is divided by ``max |x|`` over its three components, denoised (``mode``: one ``direct``
        evaluation or the ``sampling`` chain of ``T`` evaluations) in batches of ``batch_size`` windows, and
        multiplied back. ``threads``: torch intra-op threads for the call (None: unchanged)."""
        if mode not in ("direct", "sampling"):
            raise CDiffSDError(f"unknown CDiffSD mode {mode!r}: 'direct' or 'sampling'")
        arr = np.asarray(x)
        if arr.ndim != 3 or arr.shape[1] != 3:
            raise CDiffSDError(
                f"CDiffSD input has shape {arr.shape}; expected [windows, 3 components (Z, N, E), samples]"
            )
        n, _, width = arr.shape
        if width % self.config.downsampling:
            raise CDiffSDError(
                f"CDiffSD windows of {width} samples: the length must be a multiple of {self.config.downsampling} "
                f"(the model was trained on {self.config.length})"
            )
        bad = ~np.isfinite(arr).all(axis=(1, 2))
        if bad.any():
            raise CDiffSDError(
                f"CDiffSD input window {int(np.flatnonzero(bad)[0])} has NaN or infinite samples "
                f"({int(bad.sum())} window(s) in all); fill or drop them first"
            )
        scale = np.abs(arr).max(axis=(1, 2)).astype(np.float32)
        safe = np.where(scale > 0, scale, np.float32(1.0))
        out = np.empty((n, 3, width), dtype=np.float32)
        batch_size = max(1, int(batch_size))
        bar = None
        if progress:
            from seiscore.core import progress as prog

            bar = prog
        device = self.device
        self.nets.eval()
        with torch_threads(threads), torch.inference_mode():
            for lo in range(0, n, batch_size):
                hi = min(n, lo + batch_size)
                y = torch.from_numpy((arr[lo:hi] / safe[lo:hi, None, None]).astype(np.float32, copy=False))
                res = self.denoise_normalised(y.to(device), mode)
                out[lo:hi] = res.float().cpu().numpy()
                if bar is not None:
                    bar.report("windows", f"CDiffSD {mode}", hi, n)
        out *= np.where(scale > 0, scale, np.float32(0.0))[:, None, None]
        return out

    # -- artifacts --------------------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """The weights by artifact name (``net{i}.<parameter>``)."""
        return {f"net{i}.{k}": v for i, net in enumerate(self.nets) for k, v in net.state_dict().items()}

    def save(self, folder: str | os.PathLike, card: dict[str, Any] | None = None, *, overwrite: bool = False) -> Path:
        """Write the artifact folder (weights + model card with ``model_config`` and ``card``); returns it."""
        from seiscore.execution.fit import write_artifact

        full = {**self.card, **(card or {}), "model_config": self.config.model_dump(mode="json")}
        full.setdefault("parameters", self.n_parameters())
        return write_artifact(
            folder, self.tensors(), full, format=FORMAT, format_version=FORMAT_VERSION, overwrite=overwrite
        )

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str | torch.device = "cpu") -> CDiffSDModel:
        """The model of an artifact folder (format and version, configuration, every tensor's name and shape
        checked; one-line errors naming the folder)."""
        from seiscore.execution.fit import read_artifact, read_card

        folder = Path(folder)
        if not folder.is_dir():
            raise CDiffSDError(f"CDiffSD model folder {folder} does not exist or is not a folder")
        card = read_card(folder, format=FORMAT, format_version=FORMAT_VERSION)
        try:
            config = CDiffSDConfig.model_validate(card.get("model_config"))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise CDiffSDError(f"CDiffSD artifact {folder}: model_config.{where}: {err['msg']}") from None
        model = cls(config)
        expected = {k: tuple(v.shape) for k, v in model.tensors().items()}
        _, tensors = read_artifact(folder, format=FORMAT, format_version=FORMAT_VERSION, expected=expected)
        for i, net in enumerate(model.nets):
            prefix = f"net{i}."
            net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
        model.card = card
        return model.to(device)


def throughput(
    config: CDiffSDConfig | None = None,
    *,
    windows: int = 64,
    batch_size: int = 32,
    threads: int | None = 2,
    mode: Mode = "direct",
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, float]:
    """Measured cost of :meth:`CDiffSDModel.denoise` on ``windows`` random 3-C windows of ``config`` (default: the
    spec's model): wall and process-CPU seconds per window and windows per second (after one warm-up batch).
    ``python -c "from seiscore.methods.cdiffsd.model import throughput; print(throughput())"``."""
    import time

    cfg = config or CDiffSDConfig()
    model = CDiffSDModel(cfg, seed=seed).to(device)
    x = np.random.default_rng(seed).standard_normal((windows, 3, cfg.length)).astype(np.float32)
    model.denoise(x[:batch_size], mode, batch_size=batch_size, threads=threads)
    w0, c0 = time.perf_counter(), time.process_time()
    model.denoise(x, mode, batch_size=batch_size, threads=threads)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {
        "windows": windows,
        "batch_size": batch_size,
        "threads": threads or torch.get_num_threads(),
        "channels": cfg.channels,
        "device": str(device),
        "wall_s_per_window": wall / windows,
        "cpu_s_per_window": cpu / windows,
        "windows_per_s": windows / wall,
    }
