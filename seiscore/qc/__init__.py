"""Quality control of a denoising run: metrics (JSON-ready), section images and the HTML report.

- :func:`quality_metrics` - BRISQUE / PIQE before and after, leakage, band energies, and
  PSNR / SSIM / SNR against a reference when one exists; reads only sampled slices.
- :func:`section_images` - before / after / removed PNGs of an inline, a crossline and a time slice.
- :func:`write_qc_report` - one self-contained static HTML file for a survey store.
"""

from seiscore.qc.config import QCConfig
from seiscore.qc.images import section_images
from seiscore.qc.metrics import quality_metrics, volume_metrics
from seiscore.qc.report import write_qc_report

__all__ = ["QCConfig", "quality_metrics", "section_images", "volume_metrics", "write_qc_report"]
