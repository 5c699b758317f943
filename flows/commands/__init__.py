"""``seis`` commands that run the Prefect flows, plugged into the library's CLI through entry points.

The library (``seiscore``) never imports ``flows``, ``tasks`` or ``deployments``; its CLI finds these commands
through the ``seiscore.commands`` entry-point group declared in ``pyproject.toml`` (see :mod:`seiscore.cli`).
Each module exposes ``register(subparsers)`` like the library's command modules:

- :mod:`.run`: ``seis run`` and ``seis reprocess`` (the process-survey and reprocess-archive flows);
- :mod:`.demo`: ``seis demo`` (the pipeline on the synthetic survey; ``--in-memory``: TLSM alone);
- :mod:`.serve`: ``seis serve`` (the nightly deployments);
- :mod:`.fit`: ``seis fit`` (the fit-method flow: any fit-mode method into a run folder, resumable);
- :mod:`.velocity`: ``seis velocity`` (make-data, info, and the compress-velocity-archive / decode-velocity flows);
- :mod:`.fwi`: ``seis fwi`` (make-data, info, and the build-velocity-model flow).

Registering a command imports nothing heavy: Prefect, Dask and the flows load when the command runs.
"""
