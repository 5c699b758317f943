"""OpenFWI-like velocity models from continuous descriptions (docs: ``/work/shared/docs/SIREN.md`` §5).

Five families, each with an "A" and a "B" variant (OpenFWI's naming; OpenFWI's own generator is not public,
so this is a design after the published family definitions):

- ``flatvel``: 2-5 horizontal layers, interface depths uniform with at least 4 reference cells between them.
- ``curvevel``: the same layers bent by one shared curve ``z_k + A sin(2 pi f x / W + phi)``, ``A`` in [2, 8]
  reference cells, ``f`` in [0.5, 2] periods per model width ``W``.
- ``flatfault`` / ``curvefault``: 3-6 flat / curved layers cut by 1-2 planar faults, dip 50-80 degrees, throw
  4-15 reference cells (the hanging wall is shifted along the fault plane; 1 in 4 faults is reverse).
- ``style``: a crop (random centre, size, rotation) of one of the PNG images shipped inside scikit-image
  (``skimage/data/*.png``, greyscaled), Gaussian-smoothed (sigma 2-5 reference cells for "A", 1 cell for "B"),
  blended with a linear depth trend and mapped linearly to a random [vmin, vmax] inside 1500-4500 m/s.

Variants: "A" sorts the layer velocities to increase with depth (velocity grows monotonically down every
column of ``flatvel_a`` and ``curvevel_a``); "B" draws them unsorted. Velocities lie in [1500, 4500] m/s.

**Continuous descriptions.** A model is a JSON-able ``dict`` in *reference cells* of a 70 x 70 grid (the
``ref_shape``: depth ``z`` and distance ``x`` run over ``[0, 69]``). :func:`render` samples the description
at ``shape = (nz, nx)`` on the points

    z_i = i (ref_nz - 1) / (nz - 1),   x_j = j (ref_nx - 1) / (nx - 1),

i.e. ``linspace`` over the same physical extent — the grid that a decoder's coordinates ``linspace(-1, 1, k)``
address (``c = 2 z / (ref_nz - 1) - 1``). So the model at 70 x 70 is the reference grid itself, 139 x 139 holds
it exactly on its even points, and any other size samples the same continuous model (the analytic truth for
super-resolution). Layered families are piecewise constant, so sampling is exact; Style is a cubic-spline
interpolant of the smoothed image, a continuous function of position.

Seeding: each model draws from ``numpy.random.default_rng([seed, family index, model index])``, so a model
does not depend on which other families or how many models are requested.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import numpy as np

VMIN = 1500.0
VMAX = 4500.0
REF_SHAPE = (70, 70)
FAMILIES = (
    "flatvel_a",
    "flatvel_b",
    "curvevel_a",
    "curvevel_b",
    "flatfault_a",
    "flatfault_b",
    "curvefault_a",
    "curvefault_b",
    "style_a",
    "style_b",
)
MIN_GAP = 4.0  # reference cells between interfaces


class SynthError(ValueError):
    """Bad generator input (unknown family, bad count or shape, malformed description); one line."""


# -- helpers ------------------------------------------------------------------------------------------------
def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    try:
        nz, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise SynthError(f"shape must be two integers (nz, nx), got {shape!r}") from None
    if nz < 1 or nx < 1:
        raise SynthError(f"resolution must be at least 1 x 1, got {nz} x {nx}")
    return nz, nx


def sample_points(n: int, ref_n: int) -> np.ndarray:
    """Reference-cell positions of ``n`` samples over the extent ``[0, ref_n - 1]`` (float64; ``n = 1``: 0).

    Computed as ``i (ref_n - 1) / (n - 1)`` with the integer product first, so grids that share points
    (70 and 139, 70 and 277) share them bit for bit."""
    if n == 1:
        return np.zeros(1)
    return (np.arange(n, dtype=np.int64) * (ref_n - 1)) / float(n - 1)


def _interfaces(rng: np.random.Generator, n_layers: int, top: float, bottom: float) -> list[float]:
    """``n_layers - 1`` sorted depths in [top, bottom] at least MIN_GAP apart (uniform order statistics)."""
    k = n_layers - 1
    slack = (bottom - top) - (k - 1) * MIN_GAP
    u = np.sort(rng.uniform(0.0, slack, size=k))
    return [float(top + u[i] + i * MIN_GAP) for i in range(k)]


def _velocities(rng: np.random.Generator, n_layers: int, sort: bool) -> list[float]:
    v = rng.uniform(VMIN, VMAX, size=n_layers)
    if sort:
        v = np.sort(v)
    return [float(x) for x in v]


def _curve(rng: np.random.Generator) -> dict[str, float]:
    return {
        "amplitude": float(rng.uniform(2.0, 8.0)),
        "frequency": float(rng.uniform(0.5, 2.0)),
        "phase": float(rng.uniform(0.0, 2 * np.pi)),
    }


def _faults(rng: np.random.Generator, ref: tuple[int, int]) -> list[dict[str, float]]:
    faults = []
    for _ in range(int(rng.integers(1, 3))):
        dip = float(rng.uniform(50.0, 80.0))
        direction = float(rng.choice([-1.0, 1.0]))
        x_mid = float(rng.uniform(0.2, 0.8) * (ref[1] - 1))  # where the fault crosses mid-depth
        x_top = x_mid - direction * 0.5 * (ref[0] - 1) / np.tan(np.radians(dip))
        throw = float(rng.uniform(4.0, 15.0)) * (1.0 if rng.uniform() < 0.75 else -1.0)
        faults.append({"x_top": float(x_top), "dip_deg": dip, "direction": direction, "throw": throw})
    return faults


@functools.lru_cache(maxsize=None)
def style_images() -> tuple[str, ...]:
    """Names of the PNG images shipped inside scikit-image used by the Style families (sorted)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return tuple(sorted(p.name for p in folder.glob("*.png")))


@functools.lru_cache(maxsize=64)
def _style_image(name: str) -> np.ndarray:
    """A shipped scikit-image PNG as float64 grey levels in [0, 1] (read-only, cached)."""
    import skimage
    from skimage import color, io

    path = Path(skimage.__file__).parent / "data" / name
    if name not in style_images():
        raise SynthError(f"style image {name!r} is not one of scikit-image's shipped PNG images")
    img = io.imread(path)
    if img.ndim == 3 and img.shape[2] == 4:
        img = color.rgba2rgb(img)
    if img.ndim == 3:
        img = color.rgb2gray(img)
    img = np.asarray(img, dtype=np.float64)
    if img.max() > 1.0:
        img = img / 255.0
    img.setflags(write=False)
    return img


# -- descriptions ---------------------------------------------------------------------------------------------
def describe(family: str, index: int, seed: int = 0) -> dict[str, Any]:
    """The continuous description of model ``index`` of ``family`` (seeded by ``(seed, family, index)``)."""
    if family not in FAMILIES:
        raise SynthError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    rng = np.random.default_rng([int(seed), FAMILIES.index(family), int(index)])
    kind, variant = family.rsplit("_", 1)
    sort = variant == "a"
    ref = REF_SHAPE
    desc: dict[str, Any] = {"family": family, "ref_shape": list(ref)}
    if kind == "style":
        return desc | _describe_style(rng, sort, ref)
    layered = kind in ("flatvel", "curvevel")
    n_layers = int(rng.integers(2, 6)) if layered else int(rng.integers(3, 7))
    desc["interfaces"] = _interfaces(rng, n_layers, 4.0, ref[0] - 5.0)
    desc["velocities"] = _velocities(rng, n_layers, sort)
    desc["curve"] = _curve(rng) if kind.startswith("curve") else None
    desc["faults"] = _faults(rng, ref) if kind.endswith("fault") else []
    return desc


def _describe_style(rng: np.random.Generator, smooth: bool, ref: tuple[int, int]) -> dict[str, Any]:
    names = style_images()
    name = names[int(rng.integers(len(names)))]
    h, w = _style_image(name).shape
    size_max = 0.95 * min(h, w) / np.sqrt(2.0)  # a rotated square crop stays inside the image
    size = float(rng.uniform(min(40.0, size_max), size_max))
    half = size / np.sqrt(2.0)
    centre = [float(rng.uniform(half, h - 1 - half)), float(rng.uniform(half, w - 1 - half))]
    desc = {
        "image": name,
        "centre": centre,
        "size": size,  # image pixels spanned by the reference extent
        "angle_deg": float(rng.uniform(0.0, 360.0)),
        "sigma": float(rng.uniform(2.0, 5.0)) if smooth else 1.0,  # reference cells
        "trend": float(rng.uniform(0.3, 0.6)) if smooth else float(rng.uniform(0.15, 0.4)),
        "flip": bool(rng.uniform() < 0.5),
        "vmin": float(rng.uniform(VMIN, 2200.0)),
        "vmax": float(rng.uniform(3600.0, VMAX)),
    }
    # The linear map to [vmin, vmax] uses the range of the blend on the reference grid, fixed once here so every
    # resolution applies the same map (values off the reference grid are clipped to [vmin, vmax]).
    blend = _style_blend(desc | {"ref_shape": list(ref)}, ref)
    desc["lo"], desc["hi"] = float(blend.min()), float(blend.max())
    return desc


# -- rendering ------------------------------------------------------------------------------------------------
def _render_layered(desc: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    ref = tuple(desc["ref_shape"])
    z = sample_points(shape[0], ref[0])[:, None]
    x = sample_points(shape[1], ref[1])[None, :]
    Z, X = np.broadcast_arrays(z, x)
    Z, X = Z.astype(np.float64), X.astype(np.float64)
    # Undo the faults, youngest (last) first: a hanging-wall point holds the material from one throw up-dip.
    for f in reversed(desc.get("faults") or []):
        cot = 1.0 / np.tan(np.radians(f["dip_deg"]))
        d = f["direction"]
        hanging = d * (X - f["x_top"] - d * Z * cot) > 0
        X = np.where(hanging, X - d * f["throw"] * cot, X)
        Z = np.where(hanging, Z - f["throw"], Z)
    shift = 0.0
    curve = desc.get("curve")
    if curve:
        shift = curve["amplitude"] * np.sin(2 * np.pi * curve["frequency"] * X / (ref[1] - 1) + curve["phase"])
    depth = Z - shift  # depth relative to the (shared) interface curve
    iface = np.asarray(desc["interfaces"], dtype=np.float64)
    layer = (depth[..., None] >= iface).sum(axis=-1)
    vel = np.asarray(desc["velocities"], dtype=np.float64)
    if vel.size != iface.size + 1:
        raise SynthError(f"description of {desc.get('family')!r}: {vel.size} velocities for {iface.size} interfaces")
    return vel[layer]


def _style_blend(desc: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    from scipy import ndimage

    ref = tuple(desc["ref_shape"])
    img = _style_image(desc["image"])
    scale = desc["size"] / (max(ref) - 1)  # image pixels per reference cell
    sigma_px = desc["sigma"] * scale
    # Smooth only the window the rotated crop can reach (plus the filter's support): same values as smoothing
    # the whole image, at a fraction of the cost.
    cy, cx = desc["centre"]
    reach = desc["size"] / np.sqrt(2.0) + 4.0 * sigma_px + 4.0
    r0, r1 = max(0, int(np.floor(cy - reach))), min(img.shape[0], int(np.ceil(cy + reach)) + 1)
    c0, c1 = max(0, int(np.floor(cx - reach))), min(img.shape[1], int(np.ceil(cx + reach)) + 1)
    window = ndimage.gaussian_filter(img[r0:r1, c0:c1], sigma_px, mode="reflect", truncate=4.0)
    z = sample_points(shape[0], ref[0])
    x = sample_points(shape[1], ref[1])
    w = (z[:, None] - (ref[0] - 1) / 2.0) * scale
    u = (x[None, :] - (ref[1] - 1) / 2.0) * scale
    if desc.get("flip"):
        u = -u
    a = np.radians(desc["angle_deg"])
    rows = cy + w * np.cos(a) - u * np.sin(a) - r0
    cols = cx + w * np.sin(a) + u * np.cos(a) - c0
    tex = ndimage.map_coordinates(window, [rows.ravel(), cols.ravel()], order=3, mode="nearest").reshape(shape)
    depth = np.broadcast_to(z[:, None] / (ref[0] - 1), shape)
    t = desc["trend"]
    return (1.0 - t) * tex + t * depth


def _render_style(desc: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    blend = _style_blend(desc, shape)
    span = max(desc["hi"] - desc["lo"], 1e-12)
    v = desc["vmin"] + (desc["vmax"] - desc["vmin"]) * (blend - desc["lo"]) / span
    return np.clip(v, desc["vmin"], desc["vmax"])


def render_one(desc: dict[str, Any], shape: Sequence[int]) -> np.ndarray:
    """One description sampled at ``shape`` (float32 ``(nz, nx)`` in m/s)."""
    shape = _check_shape(shape)
    if not isinstance(desc, dict) or desc.get("family") not in FAMILIES:
        raise SynthError(f"not a model description (family {getattr(desc, 'get', lambda k: None)('family')!r})")
    try:
        v = _render_style(desc, shape) if desc["family"].startswith("style") else _render_layered(desc, shape)
    except KeyError as exc:
        raise SynthError(f"description of {desc['family']!r} lacks {exc.args[0]!r}") from None
    return np.clip(v, VMIN, VMAX).astype(np.float32)


def render(descriptions: dict[str, Any] | Sequence[dict[str, Any]], shape: Sequence[int]) -> np.ndarray:
    """The models of ``descriptions`` sampled at ``shape = (nz, nx)``: float32 ``(N, nz, nx)`` m/s.

    The same description gives the same model at every resolution (see the module docstring for the sample
    points); one description gives ``N = 1``."""
    if isinstance(descriptions, dict):
        descriptions = [descriptions]
    shape = _check_shape(shape)
    out = np.empty((len(descriptions), *shape), dtype=np.float32)
    for i, desc in enumerate(descriptions):
        out[i] = render_one(desc, shape)
    return out


def generate(
    n_per_family: int,
    families: Sequence[str] = FAMILIES,
    shape: Sequence[int] = REF_SHAPE,
    seed: int = 0,
) -> tuple[np.ndarray, list[str], list[str], list[dict[str, Any]]]:
    """``n_per_family`` models of each of ``families``, rendered at ``shape``.

    Returns ``(models (N, nz, nx) float32 m/s, names, family_labels, descriptions)`` in family order, names
    ``<family>_<index:05d>``; ``render(descriptions, other_shape)`` gives the same models at another size."""
    if isinstance(families, str):
        families = [families]
    try:
        n = int(n_per_family)
    except (TypeError, ValueError):
        raise SynthError(f"n_per_family must be an integer, got {n_per_family!r}") from None
    if n < 1:
        raise SynthError(f"n_per_family must be at least 1, got {n}")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise SynthError(f"unknown family {unknown[0]!r}; known: {', '.join(FAMILIES)}")
    if len(set(families)) != len(families):
        raise SynthError(f"families repeat: {list(families)}")
    shape = _check_shape(shape)
    descriptions = [describe(f, i, seed) for f in families for i in range(n)]
    names = [f"{f}_{i:05d}" for f in families for i in range(n)]
    labels = [f for f in families for _ in range(n)]
    return render(descriptions, shape), names, labels, descriptions
