"""Prefect flows of the seismic pipeline (thin layer over seiscore)."""

import os

# The temporary Prefect server that a run without PREFECT_API_URL starts would send usage telemetry
# (and log an ERROR on every offline machine, where survey processing usually runs). Off unless the
# user sets it; a real `prefect server start` keeps its own configuration.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
