"""Execution layer: run modes (blockwise tiles, per-item batches, fits), pre-flight, versions of outputs.

Library side only: the Prefect flows in ``flows/`` call these functions; nothing here imports Prefect.
"""
