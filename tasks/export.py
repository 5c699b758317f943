"""Task: export a finished output store as SEG-Y."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from seiscore.io import export


@task(name="export-segy", cache_policy=NO_CACHE)
def export_segy(store: str, dest: str) -> str:
    """Write ``store`` to the SEG-Y file ``dest`` (the source's sample format), replacing it."""
    return str(export(store, dest, overwrite=True))
