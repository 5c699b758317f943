"""make_fwi_dataset: the Marmousi-like true model, both starting models and the observed shots as stores."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("deepwave")
engine = pytest.importorskip("seiscore.methods.drfwi.engine")  # lands with the drfwi-core part

from seiscore.data.fwi_synth import make_fwi_dataset, model_hash  # noqa: E402
from seiscore.data.marmousi import MarmousiDescription, initial_model, marmousi_like, render  # noqa: E402
from seiscore.data.shots import read_shot_store  # noqa: E402
from seiscore.data.velocity import read_velocity_store  # noqa: E402


def test_make_fwi_dataset(tmp_path):
    import torch

    torch.set_num_threads(1)
    options = dict(spacing=20.0, n_shots=3, seed=2, size=(300.0, 800.0), peak_frequency=8.0, dt=0.004, record_s=0.8)
    ds = make_fwi_dataset(tmp_path / "fwi", **options)
    v, _ = marmousi_like(20.0, seed=2, size=(300.0, 800.0))
    models, names, grid, attrs = read_velocity_store(ds.true_model)
    assert names == ["true"] and grid.dx == 20.0 and np.array_equal(models[0], v)
    desc = MarmousiDescription.model_validate_json(attrs["marmousi_description"])
    assert np.array_equal(render(desc, 20.0)[0], v)  # the stored description renders the same model
    for kind in ("smooth", "linear"):
        m = read_velocity_store(ds.initial(kind))[0][0]
        assert np.array_equal(m, initial_model(v, kind, dx=20.0))
    data, geometry, obs = read_shot_store(ds.observed)
    assert geometry == ds.geometry and geometry.record_shape == (3, 40, 200)
    assert geometry.sources[0] == (1, 1) and len(geometry.receivers) == 40
    assert np.isfinite(data).all() and np.abs(data).max() > 0
    assert obs["true_model_sha256"] == model_hash(v) and obs["accuracy"] == 8
    again = make_fwi_dataset(tmp_path / "fwi", overwrite=True, **options)  # seeded: the same data again
    assert np.array_equal(read_shot_store(again.observed)[0], data)
