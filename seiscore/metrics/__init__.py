"""Quality metrics.

Full-reference metrics (PSNR, SSIM) follow the TLSM paper's convention; see
:mod:`seiscore.metrics.reference`. No-reference image quality (BRISQUE, PIQE) per slice:
:mod:`seiscore.metrics.brisque`, :mod:`seiscore.metrics.piqe`, :mod:`seiscore.metrics.noref`.
Seismic measures: signal leakage (:mod:`seiscore.metrics.leakage`) and spectra / band
energies (:mod:`seiscore.metrics.spectra`). How to read each: ``docs/metrics.md``.
"""

from seiscore.metrics.brisque import aggd_fit, brisque, brisque_features, ggd_fit
from seiscore.metrics.brisque import model_name as brisque_model_name
from seiscore.metrics.leakage import leakage_map, leakage_per_slice, local_similarity
from seiscore.metrics.mscn import mscn
from seiscore.metrics.noref import sample_indices, score_slices, to_uint8
from seiscore.metrics.piqe import piqe
from seiscore.metrics.reference import minmax_255, psnr, psnr_per_slice, ssim, ssim_per_slice
from seiscore.metrics.spectra import amplitude_spectrum, band_energies, frequency_axis

__all__ = [
    "aggd_fit",
    "amplitude_spectrum",
    "band_energies",
    "brisque",
    "brisque_features",
    "brisque_model_name",
    "frequency_axis",
    "ggd_fit",
    "leakage_map",
    "leakage_per_slice",
    "local_similarity",
    "minmax_255",
    "mscn",
    "piqe",
    "psnr",
    "psnr_per_slice",
    "sample_indices",
    "score_slices",
    "ssim",
    "ssim_per_slice",
    "to_uint8",
]
