"""The velocity archive: one Zarr group holding a SIREN decoder, per-model latents and per-model codec payloads.

Layout (Zarr v3, format ``seiscore-velocity-archive`` version 1)::

    ARCHIVE/decoder/<name>   float32   the decoder's tensors (``Siren`` state_dict names, e.g. body.0.linear.weight)
    ARCHIVE/latents          (N, L)    float32 or float16
    ARCHIVE/names            (N,)      str, unique
    ARCHIVE/codec            (N,)      str: "siren" (latent only), "hybrid" (latent + residual payload) or a codec
                                       name of :mod:`seiscore.methods.siren.codecs` (payload only)
    ARCHIVE/payload          (bytes,)  uint8: every model's payload, concatenated
    ARCHIVE/offsets          (N + 1,)  int64: model i's payload is payload[offsets[i]:offsets[i + 1]]
    ARCHIVE/family           (N,)      str (optional)

Group attributes: ``format``, ``format_version``, ``seiscore_version``, ``created``, ``autodecoder`` (the
decoder's configuration), ``normalisation`` (``vmin``, ``vmax``: ``v = vmin + v_n (vmax - vmin)``), ``shape``
(native ``[nz, nx]``), ``grid`` (spacing and origin, m), ``latent_dtype``, ``n_models``, ``card`` (the model card:
training data hash, measured quality, ...), the product mark and ``seiscore_complete``. The archive is written
under a temporary sibling and renamed into place when whole (:func:`seiscore.io.store.prepare_target` /
:func:`~seiscore.io.store.publish`), replacing only an archive or store the product wrote.

Decoding dispatches per model on its codec; ``shape`` / ``factor`` / ``coords`` other than the native grid:
SIREN models are evaluated there directly; payload codecs are decoded on the native grid and resampled
(bilinear in the ``[-1, 1]`` coordinates); hybrid models are the SIREN at the target plus the bilinearly
resampled native residual. The same archive always decodes to the same bits.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seiscore.data.velocity import VelocityGrid
from seiscore.methods.siren.config import AutoDecoderConfig, SirenError

FORMAT, FORMAT_VERSION = "seiscore-velocity-archive", 1
LATENT_DTYPES = ("float32", "float16")
SIREN, HYBRID = "siren", "hybrid"
REQUIRED = ("latents", "names", "codec", "payload", "offsets")


class ArchiveError(SirenError):
    """A velocity archive that cannot be written or read; one line naming it and the problem."""


def _str_array(group, name: str, values: Sequence[str]) -> None:
    arr = group.create_array(name, shape=(len(values),), dtype=str, chunks=(max(1, len(values)),))
    arr[:] = np.asarray(list(values), dtype=object)


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def write_archive(
    path: str | os.PathLike,
    decoder,
    latents,
    names: Sequence[str],
    grid: VelocityGrid | None,
    shape: Sequence[int],
    *,
    family: Sequence[str] | None = None,
    codecs: Sequence[str] | None = None,
    payloads: Sequence[bytes] | None = None,
    latent_dtype: str = "float32",
    card: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an archive of ``len(names)`` models decoded by ``decoder`` (a
    :class:`~seiscore.methods.siren.model.VelocityAutoDecoder`) from ``latents`` ``(N, L)``, per-model
    ``codecs`` (default all ``"siren"``) and ``payloads`` (bytes; empty for ``"siren"``), on ``grid`` with
    native ``shape`` ``(nz, nx)``. Latents are stored as ``latent_dtype`` (float32 or float16). ``card``: the
    model card to keep (e.g. the decoder artifact's). Returns the resolved path."""
    import zarr

    import seiscore
    from seiscore.core.safety import STORE_MARK_ATTR
    from seiscore.io.store import COMPLETE_ATTR, prepare_target, publish
    from seiscore.methods.siren.model import check_shape

    config: AutoDecoderConfig = decoder.config
    nz, nx = check_shape(shape, "archive shape")
    if latent_dtype not in LATENT_DTYPES:
        raise ArchiveError(f"latent_dtype must be one of {', '.join(LATENT_DTYPES)}, got {latent_dtype!r}")
    names = [str(n) for n in names]
    n = len(names)
    if n == 0:
        raise ArchiveError("an archive needs at least one model")
    if len(set(names)) != n:
        raise ArchiveError("archive model names must be unique")
    z = np.asarray(_to_numpy(latents), dtype=np.float32)
    if z.shape != (n, config.latent_dim):
        raise ArchiveError(f"latents must be ({n}, {config.latent_dim}) for {n} models, got {z.shape}")
    if not np.isfinite(z).all():
        bad = int(np.flatnonzero(~np.isfinite(z).all(axis=1))[0])
        raise ArchiveError(f"model {names[bad]!r}: its latent holds NaN or infinite values")
    stored = z.astype(latent_dtype)
    if not np.isfinite(stored).all():
        bad = int(np.flatnonzero(~np.isfinite(stored).all(axis=1))[0])
        raise ArchiveError(f"model {names[bad]!r}: its latent overflows {latent_dtype}")
    codecs = [SIREN] * n if codecs is None else [str(c) for c in codecs]
    payloads = [b""] * n if payloads is None else [bytes(p) for p in payloads]
    if len(codecs) != n or len(payloads) != n:
        raise ArchiveError(f"{len(codecs)} codecs and {len(payloads)} payloads for {n} models")
    for name, codec, payload in zip(names, codecs, payloads):
        if codec != SIREN and not payload:
            raise ArchiveError(f"model {name!r}: codec {codec!r} needs a payload, got none")
    if family is not None and len(family) != n:
        raise ArchiveError(f"{len(family)} family labels for {n} models")
    sizes = np.asarray([len(p) for p in payloads], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    blob = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    grid = grid or VelocityGrid()

    final, tmp = prepare_target(path, overwrite, what="velocity archive")
    root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    weights = root.create_group("decoder")
    state = decoder.decoder.state_dict()
    for key in config.parameter_shapes():
        weights.create_array(key, data=state[key].detach().cpu().numpy().astype(np.float32))
    root.create_array("latents", data=stored, chunks=(min(n, 4096), config.latent_dim))
    _str_array(root, "names", names)
    _str_array(root, "codec", codecs)
    root.create_array("payload", data=blob, chunks=(max(1, min(blob.size, 1 << 22)),))
    root.create_array("offsets", data=offsets)
    if family is not None:
        _str_array(root, "family", [str(f) for f in family])
    root.attrs.update(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "seiscore_version": seiscore.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "autodecoder": json.loads(config.model_dump_json()),
            "normalisation": {"vmin": config.vmin, "vmax": config.vmax},
            "shape": [nz, nx],
            "grid": grid.model_dump(),
            "latent_dtype": latent_dtype,
            "n_models": n,
            "card": json.loads(json.dumps(card or {}, default=str)),
            STORE_MARK_ATTR: 1,
            COMPLETE_ATTR: False,
        }
    )
    publish(tmp, final, attrs={COMPLETE_ATTR: True})
    return final


def open_archive(path: str | os.PathLike) -> VelocityArchive:
    """The archive at ``path``, checked: format and version, completeness, every decoder tensor and array
    present with its shape. Each problem a one-line error naming the archive."""
    return VelocityArchive(path)


class VelocityArchive:
    """A velocity archive opened for reading (:func:`open_archive`): ``names``, ``latents`` (as stored),
    ``codecs``, ``family``, ``shape``, ``grid``, ``config``, ``card``; :meth:`decode`, :meth:`payload`,
    :meth:`model_bytes`, :meth:`compression_ratios`."""

    def __init__(self, path: str | os.PathLike):
        import zarr

        from seiscore.io.store import COMPLETE_ATTR

        self.path = Path(path)
        if not (self.path / "zarr.json").is_file():
            raise FileNotFoundError(f"velocity archive {self.path} does not exist (no zarr.json)")
        try:
            root = zarr.open_group(str(self.path), mode="r")
            attrs = dict(root.attrs)
        except Exception as exc:  # noqa: BLE001 - any unreadable group: one line
            raise ArchiveError(f"{self.path} is not a readable Zarr group: {type(exc).__name__}: {exc}") from None
        if attrs.get("format") != FORMAT:
            raise ArchiveError(f"{self.path} is not a velocity archive (format {attrs.get('format')!r})")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise ArchiveError(
                f"velocity archive {self.path} has format version {attrs.get('format_version')}; this seiscore "
                f"reads version {FORMAT_VERSION}: rebuild it with this version"
            )
        if not attrs.get(COMPLETE_ATTR):
            raise ArchiveError(f"velocity archive {self.path} is incomplete (an interrupted write); rebuild it")
        self.attrs, self._root = attrs, root
        self.config = AutoDecoderConfig.model_validate(attrs["autodecoder"])
        self.shape: tuple[int, int] = tuple(int(s) for s in attrs["shape"])  # type: ignore[assignment]
        self.grid = VelocityGrid.model_validate(attrs["grid"])
        self.card: dict[str, Any] = attrs.get("card") or {}
        self.latent_dtype: str = attrs.get("latent_dtype", "float32")
        n = int(attrs["n_models"])
        expected = {f"decoder/{k}": s for k, s in self.config.parameter_shapes().items()}
        expected |= {"latents": (n, self.config.latent_dim), "names": (n,), "codec": (n,), "offsets": (n + 1,)}
        missing = [k for k in (*expected, "payload") if k not in root]
        if missing:
            raise ArchiveError(
                f"velocity archive {self.path} is missing {len(missing)} array(s): {', '.join(missing[:5])}"
            )
        wrong = [f"{k} {root[k].shape} != {s}" for k, s in expected.items() if tuple(root[k].shape) != tuple(s)]
        if wrong:
            raise ArchiveError(f"velocity archive {self.path} has arrays of the wrong shape: {'; '.join(wrong[:5])}")
        self.names: list[str] = [str(v) for v in root["names"][:]]
        self.codecs: list[str] = [str(v) for v in root["codec"][:]]
        self.family: list[str] | None = [str(v) for v in root["family"][:]] if "family" in root else None
        self.latents: np.ndarray = np.asarray(root["latents"][:])
        self.offsets: np.ndarray = np.asarray(root["offsets"][:], dtype=np.int64)
        size = int(root["payload"].shape[0])
        if self.offsets[0] != 0 or self.offsets[-1] != size or np.any(np.diff(self.offsets) < 0):
            raise ArchiveError(f"velocity archive {self.path}: payload offsets do not cover its {size} payload bytes")
        self._index = {name: i for i, name in enumerate(self.names)}
        self._decoder = None
        self._blob: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"VelocityArchive({str(self.path)!r}, {len(self)} models, shape {self.shape})"

    # -- parts ---------------------------------------------------------------------------------------------
    @property
    def decoder(self):
        """The :class:`~seiscore.methods.siren.model.VelocityAutoDecoder` (loaded once, CPU, eval mode)."""
        if self._decoder is None:
            import torch

            from seiscore.methods.siren.model import VelocityAutoDecoder

            model = VelocityAutoDecoder(self.config)
            weights = self._root["decoder"]
            state = {
                k: torch.from_numpy(np.asarray(weights[k][:], dtype=np.float32)) for k in self.config.parameter_shapes()
            }
            model.decoder.load_state_dict(state)
            self._decoder = model.eval()
        return self._decoder

    def payload(self, index: int) -> bytes:
        """Model ``index``'s payload bytes (empty for a latent-only ``"siren"`` model)."""
        if self._blob is None:
            self._blob = np.asarray(self._root["payload"][:], dtype=np.uint8)
        return self._blob[self.offsets[index] : self.offsets[index + 1]].tobytes()

    def indices(self, which=None) -> list[int]:
        """Indices of ``which``: None (all), an index, a name, or a sequence of them; one-line errors."""
        if which is None:
            return list(range(len(self)))
        items = [which] if isinstance(which, (str, int, np.integer)) else list(which)
        out = []
        for item in items:
            if isinstance(item, str):
                if item not in self._index:
                    raise ArchiveError(f"velocity archive {self.path} has no model named {item!r}")
                out.append(self._index[item])
            else:
                i = int(item)
                if not -len(self) <= i < len(self):
                    raise ArchiveError(f"model index {i} out of range: velocity archive {self.path} holds {len(self)}")
                out.append(i % len(self))
        return out

    # -- decoding ------------------------------------------------------------------------------------------
    def _target(self, shape, factor, coords):
        from seiscore.methods.siren.model import check_shape

        given = sum(x is not None for x in (shape, factor, coords))
        if given > 1:
            raise ArchiveError("decode takes at most one of shape, factor or coords")
        if factor is not None:
            f = float(factor)
            if not np.isfinite(f) or f <= 0:
                raise ArchiveError(f"decode factor must be positive, got {factor!r}")
            shape = tuple(max(1, int(round(n * f))) for n in self.shape)
            if min(shape) < 1 or f * min(self.shape) < 1:
                raise ArchiveError(f"decode factor {factor!r} leaves no sample of the {self.shape} grid")
        if coords is not None:
            pts = np.asarray(coords, dtype=np.float32)
            if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
                raise ArchiveError(f"decode coords must be finite (P, 2) points on [-1, 1], got shape {pts.shape}")
            return None, pts
        shape = self.shape if shape is None else check_shape(shape, "decode shape")
        return shape, None

    def _resample(self, native: np.ndarray, shape, pts) -> np.ndarray:
        """Bilinear resampling of native-grid maps ``(n, nz, nx)`` at ``shape``'s grid or at ``pts``."""
        from scipy.ndimage import map_coordinates

        nz, nx = self.shape
        grid_out = pts is None
        if grid_out:
            if tuple(shape) == self.shape:
                return native
            zz, xx = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
            pts = np.stack([zz.ravel(), xx.ravel()], axis=1)
        idx = np.stack([(pts[:, 0] + 1) / 2 * (nz - 1), (pts[:, 1] + 1) / 2 * (nx - 1)]).astype(np.float64)
        out = np.stack([map_coordinates(m.astype(np.float64), idx, order=1, mode="nearest") for m in native])
        out = out.astype(np.float32)
        return out.reshape(len(native), *shape) if grid_out else out

    def decode(self, which=None, shape=None, factor=None, coords=None) -> np.ndarray:
        """Velocities (m/s, float32) of the models ``which`` (None: all; index, name or a sequence): ``(n, nz',
        nx')`` on the native grid, on ``shape`` or on the native grid scaled by ``factor`` (coordinates
        ``linspace(-1, 1, k)``), or ``(n, P)`` at ``coords`` ``(P, 2)`` on ``[-1, 1]``."""
        idx = self.indices(which)
        target, pts = self._target(shape, factor, coords)
        out_shape = (len(idx), *target) if target is not None else (len(idx), pts.shape[0])
        out = np.empty(out_shape, dtype=np.float32)
        codecs = np.asarray([self.codecs[i] for i in idx], dtype=object)
        latent_rows = [k for k, c in enumerate(codecs) if c in (SIREN, HYBRID)]
        if latent_rows:
            z = self.latents[[idx[k] for k in latent_rows]].astype(np.float32)
            dec = self.decoder
            at_target = dec.decode(z, shape=target) if target is not None else dec.decode(z, coords=pts)
            out[latent_rows] = at_target
            hybrid = [j for j, k in enumerate(latent_rows) if codecs[k] == HYBRID]
            if hybrid:
                from seiscore.methods.siren.hybrid import hybrid_decode

                native_pred = at_target[hybrid] if target == self.shape else dec.decode(z[hybrid], shape=self.shape)
                rows = [latent_rows[j] for j in hybrid]
                full = np.stack(
                    [
                        np.asarray(hybrid_decode(self.payload(idx[k]), p), dtype=np.float32)
                        for k, p in zip(rows, native_pred)
                    ]
                )
                if target == self.shape:
                    out[rows] = full
                else:
                    out[rows] = at_target[hybrid] + self._resample(full - native_pred, target, pts)
        other = [k for k, c in enumerate(codecs) if c not in (SIREN, HYBRID)]
        if other:
            from seiscore.methods.siren.codecs import get_codec

            native = np.stack(
                [
                    np.asarray(get_codec(codecs[k]).decode(self.payload(idx[k]), self.shape), dtype=np.float32)
                    for k in other
                ]
            )
            out[other] = self._resample(native, target, pts)
        return out

    # -- bytes ---------------------------------------------------------------------------------------------
    def model_bytes(self) -> np.ndarray:
        """Bytes of each model ``(N,)``: its latent (``L`` x 4 or 2) when its codec uses one, plus its payload."""
        latent = self.config.latent_dim * np.dtype(self.latent_dtype).itemsize
        uses = np.asarray([c in (SIREN, HYBRID) for c in self.codecs])
        return np.diff(self.offsets) + latent * uses

    def decoder_bytes(self) -> int:
        """Bytes of the decoder's float32 weights (4 x parameters)."""
        return 4 * self.config.n_parameters()

    def compression_ratios(self) -> dict[str, Any]:
        """The spec's three compression ratios (section 3) against float32 models of the native grid:
        ``per_model`` (raw / mean model bytes), ``amortised`` (N raw / (all model bytes + the decoder, when a
        model uses it)), ``float16`` (per model with 2-byte latents); with the byte counts they come from."""
        raw = 4 * self.shape[0] * self.shape[1]
        per = self.model_bytes()
        uses = np.asarray([c in (SIREN, HYBRID) for c in self.codecs])
        dec = self.decoder_bytes() if uses.any() else 0
        half = np.diff(self.offsets) + 2 * self.config.latent_dim * uses
        return {
            "raw_bytes_per_model": raw,
            "mean_bytes_per_model": float(per.mean()),
            "decoder_bytes": dec,
            "latent_dtype": self.latent_dtype,
            "per_model": raw / float(per.mean()),
            "amortised": len(self) * raw / float(per.sum() + dec),
            "float16": raw / float(half.mean()),
            "codecs": {str(c): int(k) for c, k in zip(*np.unique(self.codecs, return_counts=True))},
        }
