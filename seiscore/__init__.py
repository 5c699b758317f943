"""seiscore: the library behind the seismic processing pipeline.

Core (settings, lineage, safety), data (catalog, data kinds, datasets), methods (the contract, the registry,
TLSM, SSB), execution (run modes, pre-flight, versions), survey I/O (SEG-Y <-> Zarr), quality metrics and
QC, the ``seis`` command line and the benchmarks. It never imports Prefect nor ``tasks/``, ``flows/``,
``deployments/``: those import it, and reach the CLI and the benchmarks through entry points
(see :mod:`seiscore.cli`).
"""

__version__ = "0.1.0"
