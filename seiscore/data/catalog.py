"""The survey catalog (``data_catalog.yaml``): pydantic models and a loader.

Each entry names a survey's SEG-Y source, its header byte positions and layout, the Zarr
stores the pipeline reads and writes, their data kind (:mod:`seiscore.data.kinds`), the method to
run with its spec (``method:``, any registered method, e.g. TLSM with its axis roles over the
store dims or SSB with its model artifact; the old key ``denoiser:`` is still read) and, for
synthetic surveys, the clean reference. Relative paths, including the path fields of the spec
(SSB's ``model``), are resolved against the catalog file's folder. A bad entry raises :class:`CatalogError`
naming the survey and the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seiscore.data.kinds import get_kind
from seiscore.methods.base import MethodConfigError
from seiscore.methods.registry import AnySpec, method_class, parse_spec

DEFAULT_CATALOG = "data_catalog.yaml"


class CatalogError(ValueError):
    """A catalog file or entry that cannot be used; the message names the survey and field."""


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
    kind: str = Field("poststack3d", description="data kind of the stores (seiscore.data.kinds)")
    method: AnySpec = Field(
        validation_alias=AliasChoices("method", "denoiser"),
        description="the method and its spec (YAML key 'method'; the old key 'denoiser' is still read)",
    )
    reference: str | None = Field(None, description="clean reference (store or SEG-Y), synthetic surveys only")
    chunks: tuple[int, int, int] | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        get_kind(v)
        return v

    @model_validator(mode="after")
    def _method_accepts_kind(self) -> SurveyEntry:
        accepted = method_class(self.method.name).data_kinds
        if self.kind not in accepted:
            raise ValueError(
                f"method {self.method.name!r} does not run on {self.kind} data (it accepts: {', '.join(accepted)})"
            )
        return self

    @property
    def dims(self) -> tuple[str, ...]:
        """Dims of the stores' main variable, from the entry's data kind."""
        return get_kind(self.kind).dims

    @field_validator("il_byte", "xl_byte")
    @classmethod
    def _header_byte(cls, v: int) -> int:
        from seiscore.io.headers import field_at

        field_at(v)
        return v

    @field_validator("source", "store", "output", "output_segy", "reference")
    @classmethod
    def _location(cls, v: str | None) -> str | None:
        """A URL (``s3://bucket/key``, any fsspec protocol) is normalised; ``..`` in one is refused. Credentials
        never come from the catalog: a URL with a user or password in it is refused."""
        from seiscore.io import location

        if v is None or not location.is_remote(v):
            return v
        if "@" in v.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError(f"{v.split('@')[-1]}: credentials do not belong in the catalog (use the environment)")
        return location.normalize(v)

    @property
    def source_path(self) -> Path | str:
        """The source SEG-Y: a local path, or its URL (``str``) for a source on object storage."""
        from seiscore.io import location

        return location.normalize(self.source)


class Catalog(BaseModel):
    """All surveys of a catalog file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = None
    surveys: dict[str, SurveyEntry]

    def get(self, name: str) -> SurveyEntry:
        """The entry ``name``; a one-line :class:`CatalogError` naming the known surveys otherwise."""
        try:
            return self.surveys[name]
        except KeyError:
            raise CatalogError(f"no survey {name!r} in catalog {self.path}; known: {', '.join(self.surveys)}") from None

    def names(self) -> list[str]:
        """Survey names, in catalog order."""
        return list(self.surveys)


_PATH_FIELDS = ("source", "store", "output", "output_segy", "reference")


def _resolve(value: str | None, base: Path) -> str | None:
    if value is None or "://" in value or os.path.isabs(value):
        return value
    return str((base / value).resolve())


def _field_name(err: dict) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(entry)"


def _with_method(raw: dict, base: Path) -> dict:
    """``raw`` with its method spec (key ``method``, or the old ``denoiser``) parsed, path fields resolved."""
    if "method" in raw and "denoiser" in raw:
        raise MethodConfigError("give 'method' only ('denoiser' is its old name)", detail="give 'method' only")
    key = "method" if "method" in raw else "denoiser"
    spec = raw[key]
    if isinstance(spec, dict) and spec.get("name"):
        fields = method_class(str(spec["name"])).spec_model.path_fields
        spec = {k: _resolve(v, base) if k in fields and isinstance(v, str) else v for k, v in spec.items()}
    rest = {k: v for k, v in raw.items() if k != key}
    return {**rest, "method": parse_spec(spec)}


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
            if "method" in raw or "denoiser" in raw:
                raw = _with_method(raw, base)
        except MethodConfigError as exc:
            key = "method" if "method" in raw else "denoiser"
            field = f"{key}.{exc.field}" if exc.field else key
            raise CatalogError(f"{where}: survey {name!r}: field '{field}': {exc.detail}") from None
        try:
            surveys[name] = SurveyEntry.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
            msg = str(err["ctx"]["error"]) if err.get("type") == "value_error" and "ctx" in err else err["msg"]
            raise CatalogError(f"{where}: survey {name!r}: field '{_field_name(err)}': {msg}{more}") from None
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
