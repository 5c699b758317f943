"""The synthetic demo survey and its clean reference as SEG-Y."""

from __future__ import annotations

import numpy as np
import pytest

from seiscore.data.datasets import load_reference, write_synthetic
from seiscore.data.synth import SynthConfig, make_survey
from seiscore.io import ingest, open_survey


def test_synthetic_survey_and_reference(tmp_path):
    cfg = SynthConfig(n_inline=12, n_crossline=16, n_time=50)
    src, ref = write_synthetic(tmp_path / "s.sgy", tmp_path / "clean.sgy", cfg)
    noisy, clean = make_survey(cfg)
    ds = open_survey(ingest(src, tmp_path / "s.zarr"))
    np.testing.assert_array_equal(ds["amplitude"].values, noisy)
    np.testing.assert_allclose(ds["sample"].values[1], 2.0)  # 2 ms
    np.testing.assert_array_equal(load_reference(ref), clean)
    np.testing.assert_array_equal(load_reference(tmp_path / "s.zarr"), noisy)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_synthetic(src, None, cfg)
