"""The synthetic survey: calibration against the paper's demo cube, seeding, shapes."""

import numpy as np
import pytest

from seiscore.data.synth import SynthConfig, from_canonical, make_survey, to_canonical
from seiscore.metrics import psnr


def test_demo_cube_starts_within_1_db_of_the_paper():
    noisy, clean = make_survey()  # 100 x 200 x 400, F = 0.2, sigma = 0.01
    assert noisy.shape == (100, 200, 400)
    assert abs(psnr(to_canonical(clean), to_canonical(noisy)) - 27.19) < 1.0


def test_clean_cube_is_scaled_to_unit_range_and_noise_is_seeded():
    cfg = SynthConfig(n_inline=8, n_crossline=12, n_time=50, seed=7)
    a, clean = make_survey(cfg)
    b, _ = make_survey(cfg)
    c, _ = make_survey(cfg, seed=8)
    assert clean.min() == pytest.approx(-1.0) and clean.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_more_noise_lowers_psnr_and_orientation_round_trips():
    cfg = SynthConfig(n_inline=10, n_crossline=20, n_time=60)
    scores = [
        psnr(to_canonical(make_survey(cfg, sigma=s)[1]), to_canonical(make_survey(cfg, sigma=s)[0]))
        for s in (0.01, 0.04)
    ]
    assert scores[0] > scores[1]
    cube = make_survey(cfg)[0]
    np.testing.assert_array_equal(from_canonical(to_canonical(cube)), cube)
    assert make_survey(cfg, dtype=np.float64)[0].dtype == np.float64
    with pytest.raises(ValueError, match="float32 or float64"):
        make_survey(cfg, dtype=np.int32)
