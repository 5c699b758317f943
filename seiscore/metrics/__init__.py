"""Quality metrics.

Full-reference metrics (PSNR, SSIM) follow the TLSM paper's convention; see
:mod:`seiscore.metrics.reference`.
"""

from seiscore.metrics.reference import minmax_255, psnr, psnr_per_slice, ssim, ssim_per_slice

__all__ = ["minmax_255", "psnr", "psnr_per_slice", "ssim", "ssim_per_slice"]
