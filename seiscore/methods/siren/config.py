"""Configuration of the velocity auto-decoder (spec ``docs/SIREN.md`` section 2) and its parameter layout.

Values the paper left blank are the spec's design choices: ``omega_0 = 30`` in every layer, latent prior
``lam = 1e-4`` with initial latents ``N(0, sigma^2)``, ``sigma = 0.01``, learning rates 1e-4 (decoder) and
1e-3 (latents), normalisation ``v_n = (v - vmin) / (vmax - vmin)`` with 1500-4500 m/s (OpenFWI's range).

This module imports only pydantic (the method's spec builds on it without loading torch).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SirenError(ValueError):
    """A SIREN input that cannot be used (bad latents, resolution, archive, ...); one line naming it."""


class AutoDecoderConfig(BaseModel):
    """Decoder size, prior, optimisation and normalisation of a velocity auto-decoder.

    The decoder is ``Siren(2 + latent_dim, width, hidden, 1, omega_0)``: input = concat(coordinates on
    ``[-1, 1]^2``, latent), ``hidden`` sine layers of ``width`` after the first one, a linear output.
    The fit minimises ``(1/N) sum_i [ MSE(f(X, z_i), v_n,i) + lam * ||z_i||^2 ]`` over decoder and latents.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    latent_dim: int = Field(256, ge=1, description="latent size L per model")
    width: int = Field(512, ge=1, description="hidden width of the decoder")
    hidden: int = Field(4, ge=0, description="sine layers width -> width after the first")
    omega_0: float = Field(30.0, gt=0, description="SIREN frequency factor of every sine layer")
    lam: float = Field(1e-4, ge=0, description="latent prior weight: lam * ||z||^2 per model")
    sigma: float = Field(0.01, ge=0, description="std of the initial latents N(0, sigma^2)")
    lr_decoder: float = Field(1e-4, gt=0, description="Adam learning rate of the decoder")
    lr_latent: float = Field(1e-3, gt=0, description="Adam learning rate of the latent table")
    epochs: int = Field(3000, ge=1, description="training epochs over all models")
    batch_maps: int = Field(32, ge=1, description="models per minibatch (all their points)")
    patience: int = Field(50, ge=0, description="ReduceLROnPlateau patience (epochs) on the epoch loss")
    factor: float = Field(0.5, gt=0, lt=1, description="ReduceLROnPlateau factor")
    encode_steps: int = Field(1000, ge=1, description="Adam steps on the latent of a new model (decoder frozen)")
    encode_lr: float = Field(1e-2, gt=0, description="learning rate of the encoding")
    vmin: float = Field(1500.0, description="velocity mapped to 0 (m/s)")
    vmax: float = Field(4500.0, description="velocity mapped to 1 (m/s)")
    checkpoint_every: int = Field(25, ge=1, description="epochs between checkpoints (and always the last)")
    device: str = Field("cpu", description="torch device of the fit / encoding")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default)")

    @model_validator(mode="after")
    def _range(self) -> AutoDecoderConfig:
        if not self.vmax > self.vmin:
            raise ValueError(f"vmax ({self.vmax:g}) must exceed vmin ({self.vmin:g})")
        return self

    @classmethod
    def small(cls, **overrides) -> AutoDecoderConfig:
        """The CI / quick configuration (spec section 8): width 64, 2 hidden layers, latent 32, with optimisation
        settings measured to work for runs of a few hundred epochs on CPU (decoder lr 1e-3, latent lr 0.1, no
        latent prior, sigma 0.1, 20 models per batch, plateau factor 0.7 after 8 epochs: on 200 layered 16 x 16
        maps, 200 epochs reach 31.3 dB PSNR_g against PCA-32's 30.7 dB). ``overrides`` replace any field."""
        tuned = {"lr_decoder": 1e-3, "lr_latent": 1e-1, "lam": 0.0, "sigma": 0.1, "batch_maps": 20}
        tuned |= {"patience": 8, "factor": 0.7}
        return cls(**{"width": 64, "hidden": 2, "latent_dim": 32, **tuned, **overrides})

    @property
    def vrange(self) -> float:
        """``vmax - vmin`` (m/s)."""
        return self.vmax - self.vmin

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every decoder tensor (the ``state_dict`` of :class:`seiscore.nn.siren.Siren`),
        computed without torch: what an archive or artifact must hold."""
        n_in, w = 2 + self.latent_dim, self.width
        shapes: dict[str, tuple[int, ...]] = {"body.0.linear.weight": (w, n_in), "body.0.linear.bias": (w,)}
        for i in range(1, self.hidden + 1):
            shapes[f"body.{i}.linear.weight"] = (w, w)
            shapes[f"body.{i}.linear.bias"] = (w,)
        shapes["out.weight"], shapes["out.bias"] = (1, w), (1,)
        return shapes

    def n_parameters(self) -> int:
        """Number of decoder parameters (1,183,745 for the paper's table)."""
        total = 0
        for shape in self.parameter_shapes().values():
            n = 1
            for s in shape:
                n *= s
            total += n
        return total
