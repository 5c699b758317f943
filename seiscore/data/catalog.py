"""The survey catalog (``data_catalog.yaml``): pydantic models and a loader.

Each entry names a survey's SEG-Y source, its header byte positions and layout, the Zarr
stores the pipeline reads and writes, the denoiser to run (with its TLSM axis roles over
the store dims) and, for synthetic surveys, the clean reference. Relative paths are
resolved against the catalog file's folder. A bad entry raises :class:`CatalogError`
naming the survey and the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

STORE_DIMS = ("inline", "crossline", "sample")
DEFAULT_CATALOG = "data_catalog.yaml"


class CatalogError(ValueError):
    """A catalog file or entry that cannot be used; the message names the survey and field."""


class TLSMAxes(BaseModel):
    """Which store dim plays each TLSM role (a permutation of inline, crossline, sample)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smooth: Literal["inline", "crossline", "sample"]
    footprint: Literal["inline", "crossline", "sample"]
    tube: Literal["inline", "crossline", "sample"]

    @model_validator(mode="after")
    def _permutation(self) -> "TLSMAxes":
        roles = (self.smooth, self.footprint, self.tube)
        if sorted(roles) != sorted(STORE_DIMS):
            raise ValueError(f"smooth/footprint/tube must be a permutation of {', '.join(STORE_DIMS)}, got {roles}")
        return self

    def as_kwargs(self) -> dict[str, str]:
        """``{"smooth": ..., "footprint": ..., "tube": ...}`` for ``seiscore.methods.tlsm.denoise_dataarray``."""
        return {"smooth": self.smooth, "footprint": self.footprint, "tube": self.tube}


class DenoiserConfig(BaseModel):
    """The denoiser a survey runs: name, preset, parameter overrides, TLSM axis roles."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["tlsm", "ssb"]
    preset: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    axes: TLSMAxes | None = None

    @model_validator(mode="after")
    def _tlsm_needs_axes(self) -> "DenoiserConfig":
        if self.name == "tlsm" and self.axes is None:
            raise ValueError("a tlsm denoiser needs axes (smooth, footprint, tube)")
        return self


class SurveyEntry(BaseModel):
    """One survey of the catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    source: str = Field(description="SEG-Y path (relative to the catalog) or fsspec URL")
    il_byte: int = 189
    xl_byte: int = 193
    sorting: Literal["inline", "crossline", "auto"] = "auto"
    sample_unit: Literal["ms", "m"] = "ms"
    store: str = Field(description="Zarr path of the ingested input store")
    output: str = Field(description="Zarr path of the denoised output store")
    output_segy: str | None = None
    denoiser: DenoiserConfig
    reference: str | None = Field(None, description="clean reference (store or SEG-Y), synthetic surveys only")
    chunks: tuple[int, int, int] | None = None

    @field_validator("il_byte", "xl_byte")
    @classmethod
    def _header_byte(cls, v: int) -> int:
        from seiscore.io.headers import field_at
        field_at(v)
        return v

    @property
    def source_path(self) -> Path:
        if "://" in self.source and not self.source.startswith("file://"):
            raise NotImplementedError(f"survey {self.name!r}: remote sources ({self.source}) are not supported yet; "
                                      f"copy the file locally and point 'source' at it")
        return Path(self.source.removeprefix("file://"))


class Catalog(BaseModel):
    """All surveys of a catalog file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = None
    surveys: dict[str, SurveyEntry]

    def get(self, name: str) -> SurveyEntry:
        try:
            return self.surveys[name]
        except KeyError:
            raise CatalogError(f"no survey {name!r} in catalog {self.path}; known: {', '.join(self.surveys)}") from None

    def names(self) -> list[str]:
        return list(self.surveys)


_PATH_FIELDS = ("source", "store", "output", "output_segy", "reference")


def _resolve(value: str | None, base: Path) -> str | None:
    if value is None or "://" in value or os.path.isabs(value):
        return value
    return str((base / value).resolve())


def _field_name(err: dict) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(entry)"


def parse_catalog(data: Any, base: Path, path: Path | None = None) -> Catalog:
    """Build a Catalog from parsed YAML; paths relative to ``base``."""
    where = path or "catalog"
    if not isinstance(data, dict) or not isinstance(data.get("surveys"), dict):
        raise CatalogError(f"{where}: expected a mapping with a 'surveys' mapping of name -> entry")
    surveys = {}
    for name, raw in data["surveys"].items():
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: survey {name!r}: entry must be a mapping, got {type(raw).__name__}")
        raw = {**raw, "name": name}
        for key in _PATH_FIELDS:
            if isinstance(raw.get(key), str):
                raw[key] = _resolve(raw[key], base)
        try:
            surveys[name] = SurveyEntry.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
            raise CatalogError(f"{where}: survey {name!r}: field '{_field_name(err)}': {err['msg']}{more}") from None
        except ValueError as exc:
            raise CatalogError(f"{where}: survey {name!r}: {exc}") from None
    return Catalog(path=path, surveys=surveys)


def load_catalog(path: str | os.PathLike = DEFAULT_CATALOG) -> Catalog:
    """Read and validate a catalog YAML file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalog not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalog(data, path.resolve().parent, path)
