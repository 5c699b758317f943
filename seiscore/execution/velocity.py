"""Compressing a velocity collection into a SIREN archive, batch by batch (the library side of the
``compress-velocity-archive`` flow, the ``seis velocity`` commands and the ``siren`` benchmark).

A job (:class:`CompressJob`) names the collection (a velocity store or a ``.npy`` file), the decoder artifact
folder, the encoding configuration, the error bound and the latent dtype. Its models are split into batches of
``batch`` models; :func:`encode_batch` encodes one batch (decoder frozen, :func:`seiscore.methods.siren.encode.
encode_models`), and, with a ``max_error``, picks per model the smallest codec that meets the bound
(:func:`seiscore.methods.siren.select.choose_codec`: the latent alone, latent + residual, or a classical codec).
The result goes to ``<work>/batch-NNNNN.npz`` (written under a temporary name and renamed), which records the
job's *run key*: a rerun of the same job skips the batches whose file holds that key, so an interrupted run
resumes where it stopped. :func:`gather` reads the batch files in order for the archive writer.

Run key = hash of (collection content hash, decoder content hash, encoding configuration, error bound, latent
dtype, batch size, seed): any change re-encodes everything.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

BATCH_PREFIX = "batch-"
DEFAULT_CANDIDATES = ("siren", "hybrid", "qzstd", "sz3", "zfp", "jpeg2k")
# Fields of AutoDecoderConfig that change encoding (the rest describe the decoder, fixed by its artifact).
ENCODE_FIELDS = ("encode_steps", "encode_lr", "lam", "device", "threads")


class CompressJob(BaseModel):
    """Everything a batch task needs to encode its models (serialisable: it travels to Dask workers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="velocity store or .npy file of the collection")
    decoder: str = Field(description="decoder artifact folder (seiscore.methods.siren.train.load_decoder)")
    work: str = Field(description="folder of the per-batch result files")
    n_models: int = Field(ge=1)
    shape: tuple[int, int]
    batch: int = Field(32, ge=1)
    max_error: float | None = Field(10.0, gt=0, description="m/s; None: latent only")
    latent_dtype: Literal["float32", "float16"] = "float32"
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    encode: dict[str, Any] = Field(default_factory=dict, description="overrides of the encoding configuration")
    seed: int = 0
    run_key: str = ""

    @property
    def n_batches(self) -> int:
        """Number of batches."""
        return -(-self.n_models // self.batch)

    def bounds(self, b: int) -> tuple[int, int]:
        """Models ``[start, stop)`` of batch ``b``."""
        if not 0 <= b < self.n_batches:
            raise ValueError(f"batch {b} out of range 0..{self.n_batches - 1}")
        return b * self.batch, min(self.n_models, (b + 1) * self.batch)

    def batch_path(self, b: int) -> Path:
        """The result file of batch ``b``."""
        return Path(self.work) / f"{BATCH_PREFIX}{b:05d}.npz"


def make_run_key(source_hash: str, decoder_digest: str, job_fields: dict[str, Any]) -> str:
    """The run key of a job: what decides whether an earlier batch file may be reused."""
    from seiscore.core.lineage import fingerprint

    return fingerprint({"source": source_hash, "decoder": decoder_digest, **job_fields})


def decoder_hash(folder: str | os.PathLike) -> str:
    """``blake2b:HEX`` of a decoder artifact's weights and configuration (not of its card, whose times change
    when a finished fit is resumed and writes the artifact again)."""
    import hashlib
    import json

    from seiscore.methods.siren.train import load_decoder

    decoder, _ = load_decoder(folder)
    h = hashlib.blake2b(digest_size=20)
    h.update(json.dumps(decoder.config.model_dump(exclude={"device", "threads"}), sort_keys=True).encode())
    for name, tensor in sorted(decoder.decoder.state_dict().items()):
        h.update(name.encode() + b"\0" + tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"blake2b:{h.hexdigest()}"


def read_models(source: str | os.PathLike, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Models ``[start, stop)`` of a collection (only those are read from a velocity store), validated float32."""
    from seiscore.data.velocity import (
        KIND,
        is_velocity_store,
        load_models,
        open_velocity_store,
        validate_models,
    )

    if is_velocity_store(source):
        da = open_velocity_store(source)[KIND.variable]
        names = [str(v) for v in da["model"].values[start:stop]]
        return validate_models(np.asarray(da.isel(model=slice(start, stop)).values), names)
    models, _, _, _ = load_models(source)
    return np.ascontiguousarray(models[start:stop])


def encoding_config(decoder, overrides: dict[str, Any] | None = None):
    """The decoder's configuration with the encoding overrides (``encode_steps``, ``encode_lr``, ...); one line
    for a field that is not an encoding setting."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(ENCODE_FIELDS))
    if unknown:
        raise ValueError(
            f"encoding overrides {unknown} are not encoding settings (allowed: {', '.join(ENCODE_FIELDS)})"
        )
    return decoder.config.model_copy(update=overrides) if overrides else decoder.config


def latent_roundtrip(latents: np.ndarray, dtype: str) -> np.ndarray:
    """``latents`` as the archive stores them (float16 rounding when ``dtype`` is float16), as float32."""
    return np.asarray(latents, dtype=dtype).astype(np.float32)


def latent_bytes(latent_dim: int, dtype: str) -> int:
    """Bytes of one stored latent."""
    return latent_dim * np.dtype(dtype).itemsize


def encode_batch(job: CompressJob, b: int, device: str | None = None) -> dict[str, Any]:
    """Encode batch ``b`` of ``job`` (skipped when its file holds the job's run key) and write its file.

    Returns ``{"batch", "models", "skipped", "seconds", "codecs": {name: count}}``. The file holds ``latents``
    (n, L) float32, and with an error bound ``codecs`` (n,) names, ``payload`` (all payloads concatenated),
    ``offsets`` (n + 1,), ``nbytes`` (n,) bytes per model (latent + payload), ``max_err`` (n,) m/s."""
    path = job.batch_path(b)
    if batch_done(job, b):
        with np.load(path, allow_pickle=False) as f:
            codecs = [str(c) for c in f["codecs"]] if "codecs" in f else ["siren"] * int(f["latents"].shape[0])
        return {"batch": b, "models": len(codecs), "skipped": True, "seconds": 0.0, "codecs": _count(codecs)}
    from seiscore.methods.siren.encode import encode_models
    from seiscore.methods.siren.train import load_decoder

    t0 = time.perf_counter()
    start, stop = job.bounds(b)
    models = read_models(job.source, start, stop)
    decoder, _ = load_decoder(job.decoder)
    overrides = dict(job.encode)
    if device is not None and "device" not in overrides:
        overrides["device"] = device
    config = encoding_config(decoder, overrides)
    decoder = decoder.to(config.device)
    latents = np.asarray(encode_models(decoder, models, config, seed=job.seed + start), dtype=np.float32)
    out: dict[str, Any] = {"latents": latents, "run_key": np.asarray(job.run_key)}
    codecs = ["siren"] * len(models)
    if job.max_error is not None:
        # the prediction the choice is made against must be the one the archive decodes: on the CPU
        codecs, payloads, nbytes, errors = choose_codecs(
            decoder.to("cpu"), models, latents, job.max_error, job.latent_dtype, job.candidates
        )
        out.update(
            codecs=np.asarray(codecs),
            payload=np.frombuffer(b"".join(payloads), dtype=np.uint8),
            offsets=np.concatenate([[0], np.cumsum([len(p) for p in payloads])]).astype(np.int64),
            nbytes=np.asarray(nbytes, dtype=np.int64),
            max_err=np.asarray(errors, dtype=np.float64),
        )
    _save_npz(path, out)
    return {
        "batch": b,
        "models": len(models),
        "skipped": False,
        "seconds": time.perf_counter() - t0,
        "codecs": _count(codecs),
    }


def choose_codecs(
    decoder,
    models: np.ndarray,
    latents: np.ndarray,
    max_error: float,
    latent_dtype: str = "float32",
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
) -> tuple[list[str], list[bytes], list[int], list[float]]:
    """Per model the smallest codec meeting ``max_error`` (m/s): ``(names, payloads, bytes, max errors)``.

    The decoder's prediction is made from the latents as stored (float16-rounded when so); ``bytes`` counts the
    latent for the codecs that need it ("siren", "hybrid")."""
    from seiscore.methods.siren.select import choose_codec

    stored = latent_roundtrip(latents, latent_dtype)
    predictions = decoder.decode(stored, shape=tuple(models.shape[1:]))
    lat_b = latent_bytes(latents.shape[1], latent_dtype)
    names, payloads, nbytes, errors = [], [], [], []
    for model, prediction in zip(models, predictions):  # one codec search per model (the codecs are per model)
        name, payload, size, err = choose_codec(
            model, max_error, candidates=tuple(candidates), prediction=prediction, latent_bytes=lat_b
        )
        names.append(str(name))
        payloads.append(bytes(payload))
        nbytes.append(int(size))
        errors.append(float(err))
    return names, payloads, nbytes, errors


def batch_done(job: CompressJob, b: int) -> bool:
    """True when batch ``b``'s file exists and holds the job's run key."""
    path = job.batch_path(b)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as f:
            return str(f["run_key"]) == job.run_key
    except Exception:  # noqa: BLE001 - unreadable or partial: redo it
        return False


def pending_batches(job: CompressJob) -> list[int]:
    """Batches without a file of this run."""
    return [b for b in range(job.n_batches) if not batch_done(job, b)]


def gather(job: CompressJob) -> dict[str, Any]:
    """The results of every batch in model order: ``latents`` (N, L) and, with an error bound, ``codecs``,
    ``payloads`` (list of bytes), ``nbytes``, ``max_err``. Raises when a batch is missing."""
    missing = pending_batches(job)
    if missing:
        raise RuntimeError(f"{len(missing)} of {job.n_batches} batches are not encoded yet (first: {missing[0]})")
    latents, codecs, payloads, nbytes, errors = [], [], [], [], []
    for b in range(job.n_batches):
        with np.load(job.batch_path(b), allow_pickle=False) as f:
            latents.append(f["latents"])
            if job.max_error is not None:
                codecs += [str(c) for c in f["codecs"]]
                raw, off = f["payload"].tobytes(), f["offsets"]
                payloads += [raw[off[i] : off[i + 1]] for i in range(len(off) - 1)]
                nbytes += f["nbytes"].tolist()
                errors += f["max_err"].tolist()
    out: dict[str, Any] = {"latents": np.concatenate(latents, axis=0)}
    if job.max_error is not None:
        out.update(codecs=codecs, payloads=payloads, nbytes=nbytes, max_err=errors)
    return out


def codec_mix(codecs: Sequence[str] | None, n: int) -> dict[str, int]:
    """How many models use each codec (all "siren" when there are no codecs)."""
    return _count(list(codecs) if codecs is not None else ["siren"] * n)


def _count(names: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in names:
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def _save_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Write ``arrays`` to ``path`` under a temporary sibling name, then rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    tmp = path.with_name(f".{path.name}.seiscore-tmp-{os.getpid()}")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


# -- planning (the pre-flight of a compress run) -----------------------------------------------------------------
class CompressPlan(BaseModel):
    """What a ``compress-velocity-archive`` run reads and writes, resolved and checked before it starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the collection's label (catalog entry name or file stem)")
    source: str
    archive: str
    work: str
    qc: str
    fit_folder: str | None = Field(description="fit run folder (None: the decoder is reused)")
    decoder: str = Field(description="decoder artifact folder (to be written by the fit when fit_folder is set)")
    n_models: int
    shape: tuple[int, int]
    params: dict[str, Any] = Field(default_factory=dict, description="siren parameters of the fit")
    encode: dict[str, Any] = Field(default_factory=dict)
    max_error: float | None = 10.0
    latent_dtype: Literal["float32", "float16"] = "float32"
    batch: int = 32
    seed: int = 0


def work_dir(archive: str | os.PathLike) -> Path:
    """The work folder of an archive (batch files, the decoder's fit run): ``<archive stem>_work`` beside it."""
    archive = Path(archive)
    return archive.with_name(archive.name.removesuffix(".zarr") + "_work")


def default_archive(source: str | os.PathLike) -> Path:
    """Where an archive goes when none is named: ``<source stem>_archive.zarr`` beside the collection."""
    source = Path(source)
    stem = source.name.removesuffix(".zarr").removesuffix(".npy")
    return source.with_name(f"{stem}_archive.zarr")


def resolve_collection(collection: str, catalog: str | os.PathLike | None) -> tuple[str, Path, Path | None, dict]:
    """``(name, source, archive from the catalog or None, siren params from the catalog)`` of ``collection``: a
    catalog entry of kind velocity2d (its ``store`` is the collection, ``output`` the archive), else a path."""
    from seiscore.data.catalog import load_catalog

    path = Path(collection)
    if catalog is not None and Path(catalog).is_file() and not path.exists():
        cat = load_catalog(catalog)
        if collection in cat.surveys:
            entry = cat.get(collection)
            if entry.kind != "velocity2d":
                raise ValueError(f"catalog entry {collection!r} is of kind {entry.kind}, not velocity2d")
            params = entry.method.params.model_dump(exclude_unset=True) if entry.method.name == "siren" else {}
            return collection, Path(entry.store), Path(entry.output), params
    if not path.exists():
        known = ""
        if catalog is not None and Path(catalog).is_file():
            kinds = load_catalog(catalog).surveys
            names = [n for n, e in kinds.items() if e.kind == "velocity2d"]
            known = f" or a velocity2d catalog entry (known: {', '.join(names) or 'none'})"
        raise FileNotFoundError(f"collection {collection!r} is neither a velocity store / .npy file{known}")
    return path.name.removesuffix(".zarr").removesuffix(".npy"), path, None, {}


def plan_compress(
    collection: str,
    archive: str | os.PathLike | None = None,
    decoder: str | os.PathLike | None = None,
    *,
    max_error: float | None = 10.0,
    latent_dtype: str = "float32",
    params: dict[str, Any] | None = None,
    batch: int = 32,
    seed: int = 0,
    catalog: str | os.PathLike | None = None,
    settings: Any = None,
) -> CompressPlan:
    """Resolve and check a compress run (one-line ``ValueError`` / ``FileNotFoundError`` for each problem): the
    collection readable and valid (shape, values: read in full once), the archive, work and QC folders safe
    write targets inside the data roots, a reused decoder readable, the parameters known."""
    from seiscore.core.safety import check_write_target, data_roots, qc_dir
    from seiscore.core.settings import get_settings

    settings = settings if settings is not None else get_settings()
    if latent_dtype not in ("float32", "float16"):
        raise ValueError(f"latent_dtype must be float32 or float16, got {latent_dtype!r}")
    if max_error is not None and not max_error > 0:
        raise ValueError(f"max_error must be > 0 m/s (or None for latent only), got {max_error}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    name, source, catalog_archive, catalog_params = resolve_collection(collection, catalog)
    models = read_models(source)  # validates every model (one line naming the first bad one)
    n, nz, nx = models.shape
    archive = Path(archive) if archive is not None else catalog_archive or default_archive(source)
    roots = data_roots(catalog if catalog_archive is not None else None, settings) or None
    protected = [("velocity collection", source)]
    target = check_write_target(archive, what="velocity archive", roots=roots, protected=protected, replace=True)
    work = check_write_target(work_dir(target), what="work folder", roots=roots, protected=protected, replace=False)
    qc = check_write_target(qc_dir(target), what="QC report folder", roots=roots, protected=protected)
    user = dict(params or {})
    catalog_params.pop("source", None)  # the collection is the entry's store
    if decoder is not None:  # the catalog's decoder settings do not apply to a reused decoder
        catalog_params = {k: v for k, v in catalog_params.items() if k in ENCODE_FIELDS}
    params = {**catalog_params, **user}
    encode = {k: params[k] for k in ENCODE_FIELDS if k in params and params[k] is not None}
    if decoder is not None:
        from seiscore.methods.siren.train import load_decoder

        decoder = Path(decoder).resolve()
        if not decoder.is_dir():
            raise FileNotFoundError(
                f"decoder {decoder} does not exist (give an artifact folder, e.g. RUN/artifacts/decoder)"
            )
        dec, _ = load_decoder(decoder)
        extra = sorted(set(user) - set(ENCODE_FIELDS) - {"allow_cpu"})
        if extra:
            raise ValueError(
                f"parameters {extra} change the decoder, which is reused; only {', '.join(ENCODE_FIELDS)} "
                "and allow_cpu apply"
            )
        encoding_config(dec, encode)
        fit_folder = None
    else:
        from seiscore.methods.registry import resolve_spec

        resolve_spec(None, method="siren", params=fit_params(source, params))  # unknown / invalid parameters
        fit_folder = work / "fit"
        decoder = fit_folder / "artifacts" / "decoder"
    return CompressPlan(
        name=name,
        source=str(source.resolve()),
        archive=str(target),
        work=str(work),
        qc=str(qc),
        fit_folder=str(fit_folder) if fit_folder is not None else None,
        decoder=str(decoder),
        n_models=n,
        shape=(nz, nx),
        params=params,
        encode=encode,
        max_error=max_error,
        latent_dtype=latent_dtype,  # type: ignore[arg-type]
        batch=batch,
        seed=seed,
    )


def fit_params(source: str | os.PathLike, params: dict[str, Any]) -> dict[str, Any]:
    """The siren method's parameters for fitting a decoder on the collection ``source``."""
    return {**params, "source": str(source)}


def make_job(
    plan: CompressPlan, decoder: str | os.PathLike, candidates: Sequence[str] = DEFAULT_CANDIDATES
) -> CompressJob:
    """The batch job of a plan once its decoder exists (the run key hashes the collection and the decoder)."""
    from seiscore.core.lineage import content_hash

    fields = {
        "encode": plan.encode,
        "max_error": plan.max_error,
        "latent_dtype": plan.latent_dtype,
        "batch": plan.batch,
        "seed": plan.seed,
        "candidates": list(candidates),
        "n_models": plan.n_models,
    }
    key = make_run_key(content_hash(plan.source), decoder_hash(decoder), fields)
    return CompressJob(
        source=plan.source,
        decoder=str(decoder),
        work=str(Path(plan.work) / "batches"),
        n_models=plan.n_models,
        shape=plan.shape,
        batch=plan.batch,
        max_error=plan.max_error,
        latent_dtype=plan.latent_dtype,
        candidates=tuple(candidates),
        encode=plan.encode,
        seed=plan.seed,
        run_key=key,
    )


def archive_sizes(
    n: int,
    shape: tuple[int, int],
    latent_dim: int,
    latent_dtype: str,
    decoder_params: int,
    nbytes: Sequence[int] | None,
    uses_decoder: bool = True,
) -> dict[str, float]:
    """Bytes and compression ratios of an archive (spec §3): per model (latent and payloads only), amortised
    (counting the float32 decoder once, when a model uses it), and the float32 raw size they compare with."""
    raw = int(shape[0] * shape[1] * 4)
    per_model = (
        np.asarray(nbytes, dtype=np.float64)
        if nbytes is not None
        else np.full(n, latent_bytes(latent_dim, latent_dtype))
    )
    decoder_bytes = 4 * int(decoder_params) if uses_decoder else 0
    total = float(per_model.sum())
    return {
        "raw_bytes_per_model": raw,
        "mean_bytes_per_model": round(float(per_model.mean()), 1),
        "max_bytes_per_model": int(per_model.max()),
        "decoder_bytes": decoder_bytes,
        "ratio_per_model": round(raw / float(per_model.mean()), 2),
        "ratio_amortised": round(n * raw / (total + decoder_bytes), 3),
    }


def decoder_parameters(decoder) -> int:
    """Number of parameters of a decoder (:class:`~seiscore.methods.siren.model.VelocityAutoDecoder`)."""
    return int(sum(p.numel() for p in decoder.decoder.parameters()))


def write_compressed_archive(plan: CompressPlan, job: CompressJob, *, flow_run_id: str | None = None) -> dict[str, Any]:
    """Gather the batches of ``job``, write the archive of ``plan`` atomically with its card and lineage.

    Returns the summary: models, codec mix, sizes and ratios (:func:`archive_sizes`), max error over the models
    (with an error bound), the archive path."""
    from seiscore.core.lineage import (
        DatasetRef,
        LineageRecord,
        content_hash,
        now_iso,
        path_size,
        write_lineage,
    )
    from seiscore.data.velocity import VelocityGrid, is_velocity_store, read_velocity_store
    from seiscore.methods.siren.archive import write_archive
    from seiscore.methods.siren.train import load_decoder

    started = now_iso()
    results = gather(job)
    decoder, decoder_card = load_decoder(job.decoder)
    if is_velocity_store(plan.source):
        _, names, grid, attrs = read_velocity_store(plan.source)
        family = attrs.get("family")
    else:
        from seiscore.data.velocity import load_models

        _, names, grid, attrs = load_models(plan.source)
        grid, family = grid or VelocityGrid(), None
    latents = results["latents"]
    mix = codec_mix(results.get("codecs"), plan.n_models)
    sizes = archive_sizes(
        plan.n_models,
        plan.shape,
        latents.shape[1],
        plan.latent_dtype,
        decoder_parameters(decoder),
        results.get("nbytes"),
        uses_decoder=bool({"siren", "hybrid"} & set(mix)),
    )
    source_hash, dec_hash = content_hash(plan.source), decoder_hash(job.decoder)
    card = {
        "collection": plan.name,
        "source": plan.source,
        "source_hash": source_hash,
        "decoder": job.decoder,
        "decoder_hash": dec_hash,
        "max_error": plan.max_error,
        "latent_dtype": plan.latent_dtype,
        "codec_mix": mix,
        "sizes": sizes,
        "run_key": job.run_key,
        "encode": plan.encode,
        "seed": plan.seed,
        "generator": attrs.get("generator"),
    }
    if results.get("max_err"):
        card["max_abs_error"] = round(float(max(results["max_err"])), 4)
    path = write_archive(
        plan.archive,
        decoder,
        latents,
        names,
        grid,
        plan.shape,
        family=family,
        codecs=results.get("codecs"),
        payloads=results.get("payloads"),
        latent_dtype=plan.latent_dtype,
        card=card,
        overwrite=True,
    )
    record = LineageRecord(
        survey=plan.name,
        status="completed",
        input=DatasetRef(uri=plan.source, size_bytes=path_size(plan.source), content_hash=source_hash),
        output=DatasetRef(uri=str(path), size_bytes=path_size(path)),
        denoiser={
            "name": "siren",
            "decoder": job.decoder,
            "decoder_hash": dec_hash,
            "decoder_card": {
                k: decoder_card.get(k) for k in ("format", "format_version", "config", "data_hash") if k in decoder_card
            },
            "params": plan.params,
            "max_error": plan.max_error,
            "latent_dtype": plan.latent_dtype,
            "batch": plan.batch,
            "seed": plan.seed,
        },
        flow_run_id=flow_run_id,
        started=started,
        ended=now_iso(),
        metrics={"codec_mix": mix, **sizes},
    )
    write_lineage(path, record)
    return {
        "archive": str(path),
        "models": plan.n_models,
        "codec_mix": mix,
        **sizes,
        **({"max_abs_error": card["max_abs_error"]} if "max_abs_error" in card else {}),
    }


# -- decoding ------------------------------------------------------------------------------------------------
class DecodePlan(BaseModel):
    """A decode run: which models of which archive, on which grid, written where and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive: str
    output: str
    format: Literal["zarr", "npy", "segy"]
    indices: list[int]
    names: list[str]
    family: list[str] | None = None
    shape: tuple[int, int]
    native: tuple[int, int]
    grid: dict[str, float]


def output_shape(native: tuple[int, int], shape: Sequence[int] | None, factor: float | None) -> tuple[int, int]:
    """The decoded grid: ``shape``, or ``round(n * factor)`` per axis, or the native one; a one-line error for a
    zero or negative resolution or both given."""
    if shape is not None and factor is not None:
        raise ValueError("give a shape or a factor, not both")
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"requested resolution {shape} is invalid: give two sizes >= 1 (nz, nx)")
        return shape  # type: ignore[return-value]
    if factor is not None:
        if not factor > 0:
            raise ValueError(f"requested resolution factor {factor} is invalid: it must be > 0")
        out = (int(round(native[0] * factor)), int(round(native[1] * factor)))
        if min(out) < 1:
            raise ValueError(f"requested resolution factor {factor} gives a grid of {out}: at least 1 x 1 is needed")
        return out
    return tuple(native)  # type: ignore[return-value]


def scaled_grid(grid, native: tuple[int, int], shape: tuple[int, int]) -> dict[str, float]:
    """The spacing of ``shape`` samples over the extent of the ``native`` grid (decoding samples the same
    ``[-1, 1]`` square: the first and last samples stay where they were)."""
    dz = grid.dz * (native[0] - 1) / (shape[0] - 1) if shape[0] > 1 else grid.dz * native[0]
    dx = grid.dx * (native[1] - 1) / (shape[1] - 1) if shape[1] > 1 else grid.dx * native[1]
    return {"dz": float(dz), "dx": float(dx), "z0": float(grid.z0), "x0": float(grid.x0)}


def plan_decode(
    archive: str | os.PathLike,
    output: str | os.PathLike,
    *,
    models: Sequence[str] | None = None,
    shape: Sequence[int] | None = None,
    factor: float | None = None,
    format: str | None = None,
    settings: Any = None,
) -> DecodePlan:
    """Resolve and check a decode run (one-line errors): the archive readable, the models known, the grid valid,
    the output a safe write target inside the data roots (``SEIS_DATA_ROOTS`` when set). ``format`` None: from
    the output's suffix (``.npy``, ``.sgy``/``.segy``, else zarr)."""
    from seiscore.core.safety import check_write_target, data_roots
    from seiscore.core.settings import get_settings
    from seiscore.methods.siren.archive import open_archive

    settings = settings if settings is not None else get_settings()
    arc = open_archive(archive)
    names = list(arc.names)
    if models:
        index = {n: i for i, n in enumerate(names)}
        unknown = [m for m in models if m not in index]
        if unknown:
            raise ValueError(f"archive {archive} has no model {unknown[0]!r} ({len(names)} models, e.g. {names[0]!r})")
        indices = [index[m] for m in models]
    else:
        indices = list(range(len(names)))
    native = tuple(int(s) for s in arc.shape)
    out_shape = output_shape(native, shape, factor)  # type: ignore[arg-type]
    fmt = format or {".npy": "npy", ".sgy": "segy", ".segy": "segy"}.get(Path(output).suffix.lower(), "zarr")
    if fmt not in ("zarr", "npy", "segy"):
        raise ValueError(f"format must be zarr, npy or segy, got {fmt!r}")
    roots = data_roots(None, settings) or None
    target = check_write_target(output, what="decoded output", roots=roots, protected=[("archive", archive)])
    family = getattr(arc, "family", None)
    return DecodePlan(
        archive=str(Path(archive).resolve()),
        output=str(target),
        format=fmt,  # type: ignore[arg-type]
        indices=indices,
        names=[names[i] for i in indices],
        family=[str(family[i]) for i in indices] if family is not None else None,
        shape=out_shape,
        native=native,  # type: ignore[arg-type]
        grid=scaled_grid(arc.grid, native, out_shape),  # type: ignore[arg-type]
    )


def write_decoded(plan: DecodePlan, models: np.ndarray) -> Path:
    """Write decoded ``models`` (n, nz, nx) m/s as the plan says, never half-written: zarr -> a velocity store;
    npy -> one ``(n, nz, nx)`` float32 array; segy -> ONE file, inline = model (1-based, in the plan's order),
    crossline = x sample, trace samples = depth (sample interval = depth spacing in mm)."""
    from seiscore.core.safety import replace_file
    from seiscore.data.velocity import VelocityGrid, write_velocity_store

    out = Path(plan.output)
    attrs = {"source": plan.archive, "decoded_from": "seiscore-velocity-archive", "native_shape": list(plan.native)}
    if plan.format == "zarr":
        return write_velocity_store(
            out,
            models,
            grid=VelocityGrid(**plan.grid),
            names=plan.names,
            family=plan.family,
            attrs=attrs,
            overwrite=True,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.seiscore-tmp-{os.getpid()}")
    try:
        if plan.format == "npy":
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(models, dtype=np.float32))
        else:
            from seiscore.io.segy_write import SegyWriteSpec, write_cube

            interval = max(1, int(round(plan.grid["dz"] * 1000)))
            spec = SegyWriteSpec(
                sample_interval_us=interval,
                crossline_step=(plan.grid["dx"], 0.0),
                text=f"seiscore decoded velocity models (m/s) from {Path(plan.archive).name}; inline = model, "
                f"crossline = x, samples = depth, interval = depth spacing in mm",
            )
            write_cube(tmp, np.ascontiguousarray(np.asarray(models, dtype=np.float32).transpose(0, 2, 1)), spec)
        return replace_file(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
