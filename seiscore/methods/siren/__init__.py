"""SIREN auto-decoder archives of 2-D velocity models (issue 15, spec ``docs/SIREN.md``).

A shared SIREN decoder ``f(x, z) -> v`` (:class:`~seiscore.methods.siren.model.VelocityAutoDecoder`) and one
latent vector per model, fitted jointly (:func:`~seiscore.methods.siren.train.fit_autodecoder`, run mode
``fit``); new models are encoded with the decoder frozen (:func:`~seiscore.methods.siren.encode.encode_models`);
the decoder, the latents and per-model codec payloads live in one Zarr archive
(:mod:`seiscore.methods.siren.archive`) decodable at any resolution.

Importing this package imports neither torch nor zarr: the submodules do, when used.
"""

from __future__ import annotations

from seiscore.methods.siren.config import AutoDecoderConfig, SirenError

__all__ = ["AutoDecoderConfig", "SirenError"]
