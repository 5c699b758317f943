"""Prefect tasks of the seismic pipeline (thin layer over seiscore)."""
