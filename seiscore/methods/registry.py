"""The method registry: built-in methods, third-party methods from entry points, availability.

- Built-in methods are named here by import path (``BUILTIN``); their modules import only the
  contract and pydantic, so listing them never imports torch or numba.
- Third-party packages register methods through the ``seiscore.methods`` entry-point group; each
  entry point loads a :class:`~seiscore.methods.base.Method` subclass::

      [project.entry-points."seiscore.methods"]
      median = "my_package.median:MedianMethod"

- A method whose ``requires`` modules are missing is *unavailable*: listed with the extra that
  installs it, refused at run time with that line.

:func:`get_method` answers an unknown name with the available ones; :func:`parse_spec` validates a
spec (a mapping with ``name``) against the named method's strict model.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Annotated, Any

from pydantic import BeforeValidator, SerializeAsAny

from seiscore.methods.base import Method, MethodConfigError, MethodSpec, did_you_mean, validate_spec

ENTRY_POINT_GROUP = "seiscore.methods"
BUILTIN: dict[str, str] = {
    "tlsm": "seiscore.methods.tlsm.method:TLSMMethod",
    "ssb": "seiscore.methods.ssb.method:SSBMethod",
    "siren": "seiscore.methods.siren.method:SirenMethod",
    "drfwi": "seiscore.methods.drfwi.method:DRFWIMethod",
    "cdiffsd": "seiscore.methods.cdiffsd.method:CDiffSDMethod",
    "cdiffsd-train": "seiscore.methods.cdiffsd.method:CDiffSDTrainMethod",
}


class UnknownMethodError(MethodConfigError):
    """No registered method has this name; the message lists the available ones."""


class MethodUnavailableError(MethodConfigError):
    """The method is registered but its optional dependencies are missing; the message names the extra."""


@dataclass(frozen=True)
class MethodInfo:
    """One row of ``seis methods``."""

    name: str
    data_kinds: tuple[str, ...]
    mode: str
    resources: dict[str, float]
    available: bool
    missing: str = ""
    origin: str = "built-in"
    description: str = ""
    extra: str | None = None
    requires: tuple[str, ...] = field(default_factory=tuple)
    needs: tuple[str, ...] = field(default_factory=tuple)  # the required modules that are missing
    install: str = ""  # how to install them (the pip extra)


_runtime: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Register ``cls`` at run time (tests, notebooks); usable as a class decorator."""
    _runtime[cls.name] = cls
    return cls


def _load(target: str) -> type[Method]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@lru_cache(maxsize=1)
def _plugins() -> dict[str, tuple[type[Method], str]]:
    """Methods of the ``seiscore.methods`` entry points (scanned once: about 0.1 s; :func:`refresh` rescans)."""
    found: dict[str, tuple[type[Method], str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, not fatal to the others
            found.setdefault(ep.name, (_broken(ep.name, f"{type(exc).__name__}: {exc}"), ep.value))
            continue
        if not (isinstance(cls, type) and issubclass(cls, Method) and isinstance(getattr(cls, "name", None), str)):
            found.setdefault(ep.name, (_broken(ep.name, f"{ep.value} is not a Method subclass with a name"), ep.value))
            continue
        dist = getattr(ep, "dist", None)
        found[cls.name] = (cls, f"{dist.name} {dist.version}" if dist is not None else ep.value)
    return found


def refresh() -> None:
    """Forget the scanned entry points (after installing a plug-in in a running process)."""
    _plugins.cache_clear()
    importlib.invalidate_caches()


def _classes(*, fresh: bool = False) -> dict[str, tuple[type[Method], str]]:
    """Every method by name: built-in, then plug-ins (never shadowing a built-in), then registered at run time."""
    if fresh:
        refresh()
    found: dict[str, tuple[type[Method], str]] = {name: (_load(t), "built-in") for name, t in BUILTIN.items()}
    for name, entry in _plugins().items():
        found.setdefault(name, entry)  # a plug-in never shadows a built-in method
    for name, cls in _runtime.items():
        found[name] = (cls, "registered at run time")
    return found


def _broken(name: str, why: str) -> type[Method]:
    class Broken(Method):
        description = f"failed to load: {why}"
        spec_model = MethodSpec
        data_kinds = ()
        mode = "blockwise"
        requires = (f"<{why}>",)

    Broken.name = name
    return Broken


def _missing(cls: type[Method]) -> list[str]:
    out = []
    for module in cls.requires:
        try:
            if importlib.util.find_spec(module) is None:
                out.append(module)
        except (ImportError, ValueError):
            out.append(module)
    return out


def _install(cls: type[Method], missing: list[str]) -> str:
    """How to install what ``cls`` misses: its pip extra, else the modules."""
    return f"pip install 'seiscore[{cls.extra}]'" if cls.extra else f"install {', '.join(missing)}"


def _unavailable_line(cls: type[Method], missing: list[str]) -> str:
    return f"method {cls.name!r} needs {', '.join(missing)}, which is not installed: {_install(cls, missing)}"


def names(*, available_only: bool = False, fresh: bool = False) -> list[str]:
    """Registered method names (sorted), optionally only those whose dependencies are installed; ``fresh``
    rescans the entry points first (for a list that must include plug-ins installed since the last scan)."""
    classes = _classes(fresh=fresh)
    return sorted(n for n, (cls, _) in classes.items() if not available_only or not _missing(cls))


def method_class(name: str) -> type[Method]:
    """The class of method ``name`` (available or not); :class:`UnknownMethodError` otherwise."""
    if name in _runtime:
        return _runtime[name]
    if name in BUILTIN:
        return _load(BUILTIN[name])
    classes = _classes()
    if name not in classes:
        classes = _classes(fresh=True)  # installed since the last scan?
    if name not in classes:
        raise UnknownMethodError(
            f"unknown method {name!r}{did_you_mean(name, classes)}; available: {', '.join(sorted(classes))}",
            field="name",
        )
    return classes[name][0]


def get_method(name: str) -> Method:
    """The method ``name``, ready to run: :class:`UnknownMethodError` or :class:`MethodUnavailableError`."""
    cls = method_class(name)
    missing = _missing(cls)
    if missing:
        raise MethodUnavailableError(_unavailable_line(cls, missing))
    return cls()


def method_table() -> list[MethodInfo]:
    """Every registered method with its kinds, mode, default resources and availability."""
    rows = []
    for name, (cls, origin) in sorted(_classes(fresh=True).items()):
        missing = _missing(cls)
        try:
            resources = cls().resources(cls.spec_model.model_construct(name=name)) if not missing else {}
        except Exception:  # noqa: BLE001 - a spec needing fields cannot be defaulted: resources unknown
            resources = {}
        rows.append(
            MethodInfo(
                name=name,
                data_kinds=tuple(cls.data_kinds),
                mode=cls.mode,
                resources=resources,
                available=not missing,
                missing=_unavailable_line(cls, missing) if missing else "",
                origin=origin,
                description=cls.description,
                extra=cls.extra,
                requires=tuple(cls.requires),
                needs=tuple(missing),
                install=_install(cls, missing) if missing else "",
            )
        )
    return rows


def parse_spec(data: Any) -> MethodSpec:
    """A method spec from a mapping (its ``name`` picks the method's strict model) or a spec instance (kept
    when it already is of that model, re-validated otherwise)."""
    if isinstance(data, MethodSpec):
        cls = method_class(data.name)
        if type(data) is cls.spec_model:
            return data
        data = data.model_dump(exclude_unset=True) | {"name": data.name}
    if not isinstance(data, dict) or not data.get("name"):
        raise MethodConfigError(
            f"a method spec needs a 'name' (one of {', '.join(names())}), got {data!r}", field="name"
        )
    cls = method_class(str(data["name"]))
    return validate_spec(cls.spec_model, dict(data))


# A field holding any method's spec: validated by the named method's model, serialised with all its fields.
AnySpec = Annotated[SerializeAsAny[MethodSpec], BeforeValidator(parse_spec)]


def resolve_spec(entry: Any, method: str | None = None, params: dict[str, Any] | None = None) -> MethodSpec:
    """The spec of a run: the catalog ``entry``'s spec (``entry.method``; or a spec / mapping given directly),
    or the defaults of ``method`` when it names another method (nothing method-specific is kept), then the
    run's ``params`` overrides. One-line :class:`MethodConfigError` / :class:`UnknownMethodError` on a problem."""
    base = getattr(entry, "method", entry)
    spec = parse_spec(base) if base is not None else None
    name = method or (spec.name if spec is not None else None)
    if not name:
        raise MethodConfigError(f"no method given; available: {', '.join(names())}", field="name")
    cls = method_class(name)
    if spec is not None and spec.name == name:
        return spec.with_overrides(params)
    data = cls.spec_model.merge_overrides({"name": name}, params)
    return validate_spec(cls.spec_model, data)
