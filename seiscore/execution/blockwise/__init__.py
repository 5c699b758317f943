"""The ``blockwise`` run mode: tiles with halos, seam-free blending and per-tile completion.

- :mod:`.tiling` - the tile plan over any number of dims and the blend weights;
- :mod:`.state` - per-tile completion flags and scratch blocks inside the output store;
- :mod:`.jobs` - the work units (denoise one tile, write one tile) the workers run.
"""
