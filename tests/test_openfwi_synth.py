"""OpenFWI-like generator: families, seeding, value range, monotone A variants, any-resolution rendering."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seiscore.data.openfwi_synth import (
    FAMILIES,
    VMAX,
    VMIN,
    SynthError,
    describe,
    generate,
    render,
    sample_points,
    style_images,
)


@pytest.fixture(scope="module")
def collection():
    return generate(3, seed=0)


def _of(collection, family):
    models, _, labels, descs = collection
    idx = [i for i, f in enumerate(labels) if f == family]
    return models[idx], [descs[i] for i in idx]


def test_shapes_names_labels_and_range(collection):
    models, names, labels, descs = collection
    assert models.shape == (30, 70, 70) and models.dtype == np.float32
    assert len(names) == len(set(names)) == len(labels) == len(descs) == 30
    assert labels == [f for f in FAMILIES for _ in range(3)]
    assert names[0] == "flatvel_a_00000" and names[-1] == "style_b_00002"
    assert models.min() >= VMIN and models.max() <= VMAX
    assert np.isfinite(models).all()


def test_seeded_and_independent_of_the_request(collection):
    models = collection[0]
    again = generate(3, seed=0)[0]
    np.testing.assert_array_equal(models, again)
    other = generate(3, seed=1)[0]
    assert np.abs(other - models).reshape(30, -1).max(axis=1).min() > 0  # every model changes with the seed
    # one model depends only on (seed, family, index), not on the other families or the count
    alone = generate(2, families=["curvefault_b"], seed=0)[0]
    np.testing.assert_array_equal(alone, _of(collection, "curvefault_b")[0][:2])
    assert describe("style_a", 1, seed=0) == _of(collection, "style_a")[1][1]


def test_families_have_their_structure(collection):
    for family in FAMILIES:
        models, descs = _of(collection, family)
        n_unique = np.array([np.unique(m).size for m in models])
        row_constant = np.array([bool((m == m[:, :1]).all()) for m in models])
        if family.startswith("flatvel"):
            assert row_constant.all() and ((n_unique >= 2) & (n_unique <= 5)).all(), family
        elif family.startswith("style"):
            assert (n_unique > 500).all(), family  # continuous texture
            assert all(d["image"] in style_images() for d in descs)
        else:  # curved or faulted layers: piecewise constant, not flat
            assert not row_constant.any(), family
            assert (n_unique <= 6).all(), family
        if family.endswith("fault_a") or family.endswith("fault_b"):
            assert all(1 <= len(d["faults"]) <= 2 for d in descs)
            assert all(50 <= f["dip_deg"] <= 80 and 4 <= abs(f["throw"]) <= 15 for d in descs for f in d["faults"])
    # the families differ from each other: style maps are smooth textures, layered maps are piecewise constant
    flat, _ = _of(collection, "flatvel_b")
    style, _ = _of(collection, "style_b")
    assert np.unique(flat[0]).size < np.unique(style[0]).size
    # A: sorted layer velocities, B: at least one unsorted among the B models
    assert all(d["velocities"] == sorted(d["velocities"]) for f in FAMILIES if f.endswith("_a") and "style" not in f
               for d in _of(collection, f)[1])  # fmt: skip
    b = [d["velocities"] for f in ("flatvel_b", "curvevel_b", "flatfault_b", "curvefault_b")
         for d in _of(collection, f)[1]]  # fmt: skip
    assert any(v != sorted(v) for v in b)


@pytest.mark.parametrize("family", ["flatvel_a", "curvevel_a"])
def test_a_variants_increase_with_depth(family):
    models = generate(6, families=[family], seed=3)[0]
    assert (np.diff(models, axis=1) >= 0).all()
    fine = render([describe(family, i, seed=3) for i in range(6)], (140, 90))
    assert (np.diff(fine, axis=1) >= 0).all()


def test_render_shares_grid_points_exactly(collection):
    models, _, _, descs = collection
    np.testing.assert_array_equal(render(descs, (70, 70)), models)
    np.testing.assert_array_equal(render(descs, (139, 139))[:, ::2, ::2], models)
    np.testing.assert_array_equal(render(descs[::5], (277, 277))[:, ::4, ::4], models[::5])
    # the grid points match a decoder's linspace(-1, 1, k) coordinates over the same extent
    for k in (70, 140, 280):
        np.testing.assert_allclose(2 * sample_points(k, 70) / 69 - 1, np.linspace(-1, 1, k), atol=1e-12)


def test_render_at_140_is_the_same_model(collection):
    """At 140 x 140 (no shared interior points) the analytic render agrees with the 70 x 70 model sampled at
    the nearest 70 x 70 point almost everywhere (layers) and closely (style)."""
    models, _, labels, descs = collection
    fine = render(descs, (140, 140))
    nearest = np.rint(sample_points(140, 70)).astype(int)
    coarse = models[:, nearest][:, :, nearest]
    for i, family in enumerate(labels):
        if family.startswith("style"):
            assert np.abs(fine[i] - coarse[i]).mean() < 60.0, family
        else:
            assert np.mean(fine[i] == coarse[i]) > 0.85, family


def test_any_resolution_and_descriptions_are_json(collection):
    descs = collection[3]
    assert render(descs[:4], (33, 47)).shape == (4, 33, 47)
    assert render(descs[0], (1, 1)).shape == (1, 1, 1)
    restored = json.loads(json.dumps(descs))
    np.testing.assert_array_equal(render(restored, (35, 35)), render(descs, (35, 35)))
    small = generate(1, shape=(32, 32), seed=0)[0]
    assert small.shape == (10, 32, 32)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: render(d, (0, 70)), "resolution must be at least 1 x 1"),
        (lambda d: render(d, (70,)), "shape must be two integers"),
        (lambda d: generate(0), "n_per_family must be at least 1"),
        (lambda d: generate(1, families=["flatvel_c"]), "unknown family 'flatvel_c'"),
        (lambda d: render([{"family": "nope"}], (10, 10)), "not a model description"),
        (lambda d: render([{k: v for k, v in d[0].items() if k != "velocities"}], (10, 10)), "lacks 'velocities'"),
    ],
)
def test_bad_input_is_one_line(collection, call, message):
    with pytest.raises(SynthError, match=message) as info:
        call(collection[3])
    assert "\n" not in str(info.value)
