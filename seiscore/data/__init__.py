"""Data layer: the survey catalog, data kinds (store layouts with named dims), bundled and synthetic data.

The SEG-Y <-> Zarr store I/O lives in :mod:`seiscore.io`.
"""
