"""seiscore: the library behind the seismic denoising pipeline.

Algorithms (TLSM, SSB), survey I/O (SEG-Y <-> Zarr), quality metrics, tiling and
lineage. It never imports Prefect: orchestration lives in ``tasks/`` and ``flows/``.
"""

__version__ = "0.1.0"
