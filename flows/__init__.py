"""Prefect flows of the seismic pipeline (thin layer over seiscore)."""
