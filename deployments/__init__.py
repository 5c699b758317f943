"""Prefect deployments of the seismic pipeline (thin layer over seiscore)."""
