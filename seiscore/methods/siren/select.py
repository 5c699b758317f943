"""Per-model codec choice: the fewest bytes among candidate codecs that meet a maximum error (m/s).

Bytes counted per model: ``siren`` = the latent only (``latent_bytes``, e.g. L * 4 for float32 latents; the
payload is empty), and it qualifies only when the prediction alone is within the bound; ``hybrid`` =
``latent_bytes`` + the residual payload (:mod:`seiscore.methods.siren.hybrid`); every other codec = its payload
(:func:`seiscore.methods.siren.codecs.encode_to_error`). The shared decoder / PCA basis are not counted per model
(they are amortised over the archive). The default candidates include ``qzstd`` (quantiser + zstd), measured
the smallest single codec on layered maps. Every candidate's error is measured after decoding. Ties go to the
candidate listed first, so the choice is deterministic.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seiscore.methods.siren.codecs import (
    NAMES,
    BoundError,
    BudgetError,
    CodecError,
    _check_bound,
    as_model,
    encode_to_error,
    get_codec,
)
from seiscore.methods.siren.hybrid import hybrid_decode, hybrid_encode

DEFAULT_CANDIDATES = ("siren", "hybrid", "sz3", "zfp", "jpeg2k", "qzstd")
PREDICTIVE = ("siren", "hybrid")


def _max_err(decoded: np.ndarray, model: np.ndarray) -> float:
    return float(np.abs(decoded.astype(np.float64) - model.astype(np.float64)).max())


def choose_codec(
    model: np.ndarray,
    max_error: float,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    prediction: np.ndarray | None = None,
    latent_bytes: int = 0,
    **options: Any,
) -> tuple[str, bytes, int, float]:
    """``(name, payload, nbytes, max_err)`` of the candidate with the fewest bytes whose decoded model is within
    ``max_error`` m/s of ``model``. ``prediction`` (the SIREN decoding, ``(nz, nx)`` m/s) is needed by ``siren``
    and ``hybrid`` (skipped without it); ``options`` go to the codecs (``basis`` for ``pca``).

    Raises :class:`CodecError` for unknown candidates and when no candidate meets the bound."""
    m = as_model(model)
    bound = _check_bound(max_error)
    candidates = list(candidates)
    if not candidates:
        raise CodecError("no candidate codecs given")
    unknown = [c for c in candidates if c not in PREDICTIVE and c not in NAMES]
    if unknown:
        raise CodecError(f"unknown candidate codec {unknown[0]!r}; known: {', '.join((*PREDICTIVE, *NAMES))}")
    if len(set(candidates)) != len(candidates):
        raise CodecError(f"candidate codecs repeat: {candidates}")
    if int(latent_bytes) < 0:
        raise CodecError(f"latent_bytes must be non-negative, got {latent_bytes}")
    if prediction is None and all(c in PREDICTIVE for c in candidates):
        raise CodecError(f"candidates {candidates} need the SIREN prediction, none was given")
    pred = None if prediction is None else as_model(prediction, what="prediction")
    if pred is not None and pred.shape != m.shape:
        raise CodecError(f"prediction has shape {pred.shape}, the model {m.shape}")

    best: tuple[int, int, str, bytes, float] | None = None
    failures = []
    for order, name in enumerate(candidates):
        try:
            if name == "siren":
                if pred is None:
                    continue
                payload, nbytes, err = b"", int(latent_bytes), _max_err(pred, m)
                if err > bound:
                    failures.append(f"siren {err:.3g} m/s")
                    continue
            elif name == "hybrid":
                if pred is None:
                    continue
                payload = hybrid_encode(m, pred, bound)
                nbytes, err = int(latent_bytes) + len(payload), _max_err(hybrid_decode(payload, pred), m)
            else:
                opts = {"basis": options["basis"]} if name == "pca" and "basis" in options else {}
                payload = encode_to_error(name, m, bound, **opts)
                nbytes, err = len(payload), _max_err(get_codec(name, **opts).decode(payload, m.shape), m)
        except (BoundError, BudgetError) as exc:
            failures.append(str(exc))
            continue
        if err > bound:  # a codec's own search already verified; this guards the contract
            failures.append(f"{name} {err:.3g} m/s")
            continue
        key = (nbytes, order)
        if best is None or key < best[:2]:
            best = (nbytes, order, name, payload, err)
    if best is None:
        raise CodecError(f"no candidate meets a maximum error of {bound:g} m/s: {'; '.join(failures)}")
    nbytes, _, name, payload, err = best
    return name, payload, nbytes, err
