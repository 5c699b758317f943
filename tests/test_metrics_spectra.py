"""Average amplitude spectra and removed energy per band."""

import numpy as np
import pytest

from seiscore.metrics.spectra import amplitude_spectrum, band_edges, band_energies, frequency_axis


def test_spectrum_peaks_at_the_sine_frequency():
    t = np.arange(250) * 0.004  # 4 ms, Nyquist 125 Hz
    traces = np.sin(2 * np.pi * 30 * t)[None, None, :] * np.arange(1, 4)[:, None, None] * np.ones((1, 5, 1))
    f, unit = frequency_axis(250, 4.0, "ms")
    assert unit == "Hz" and f[-1] == pytest.approx(125.0)
    spec = amplitude_spectrum(traces)
    assert f[np.argmax(spec)] == pytest.approx(30.0, abs=0.5)
    assert frequency_axis(10, 5.0, "m")[1] == "cycles/km" and frequency_axis(10, 3.0, None)[0][-1] == pytest.approx(0.5)


def test_band_energies_split_removed_noise_by_frequency():
    t = np.arange(500) * 0.002  # Nyquist 250 Hz; bands of 62.5 Hz
    low = np.sin(2 * np.pi * 20 * t)
    high = 0.5 * np.sin(2 * np.pi * 200 * t)
    original = np.tile(low + high, (8, 1))
    denoised = np.tile(low, (8, 1))  # the denoiser removed exactly the 200 Hz part
    f, _ = frequency_axis(500, 2.0, "ms")
    bands = band_energies(original, denoised, f, band_edges(f[-1], 4))
    assert [b["band"] for b in bands][0] == [0.0, 62.5] and bands[-1]["band"][1] == pytest.approx(250.0)
    assert bands[0]["removed_fraction"] < 1e-10
    assert bands[3]["removed_fraction"] == pytest.approx(1.0, rel=1e-6)
    total = (np.abs(np.fft.rfft(original, axis=-1)) ** 2).sum()
    assert sum(b["original_energy"] for b in bands) == pytest.approx(total)


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 samples"):
        frequency_axis(1, 1.0, "ms")
    with pytest.raises(ValueError, match="positive"):
        frequency_axis(10, 0.0, "ms")
    with pytest.raises(ValueError, match="shape"):
        band_energies(np.zeros((2, 10)), np.zeros((3, 10)), np.fft.rfftfreq(10), [0, 0.5])
