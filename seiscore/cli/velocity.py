"""The library's ``seis velocity`` sub-commands: ``make-data`` (an OpenFWI-like collection) and ``info`` (an
archive's card, sizes, compression ratios, codec mix).

There is ONE ``seis velocity`` command: its parser is made by the plug-in :mod:`flows.commands.velocity` (the
``seiscore.commands`` entry point ``velocity``), which adds these two through :func:`add_library_commands` beside
the flow-backed ``compress`` and ``decode``. Nothing heavy is imported when the parser is built.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_library_commands(vsub) -> None:
    """Add ``make-data`` and ``info`` to the ``seis velocity`` sub-parsers ``vsub``."""
    from seiscore.cli.common import add_progress_flag

    m = vsub.add_parser(
        "make-data",
        help="generate an OpenFWI-like collection (the five families, A/B) into a velocity store or .npy",
        description="Render N models of each OpenFWI-like family from continuous descriptions (seeded) and "
        "write them as a velocity store (NAME.zarr: family labels and the generator recipe kept, so QC can "
        "compare super-resolution with the analytic truth) or as an OpenFWI-layout .npy (N, 1, nz, nx).",
    )
    m.add_argument("output", help="velocity store (.zarr) or .npy file to write")
    m.add_argument("--per-family", type=int, default=20, metavar="N", help="models per family (default 20)")
    m.add_argument("--families", help="comma-separated families (default: all ten, see seiscore.data.openfwi_synth)")
    m.add_argument("--shape", type=int, nargs=2, default=(70, 70), metavar=("NZ", "NX"), help="grid (default 70 70)")
    m.add_argument("--spacing", type=float, default=10.0, metavar="M", help="grid spacing in metres (default 10)")
    m.add_argument("--seed", type=int, default=0, help="seed of the descriptions (default 0)")
    m.add_argument("--overwrite", action="store_true", help="replace an existing store the product wrote")
    add_progress_flag(m, what="families rendered")
    m.set_defaults(func=make_data)

    i = vsub.add_parser("info", help="an archive's card: models, grid, sizes, compression ratios, codec mix")
    i.add_argument("archive", help="velocity archive (written by seis velocity compress)")
    i.add_argument("--json", action="store_true", help="print the card as JSON")
    i.set_defaults(func=info)


def _roots():
    from seiscore.core.safety import data_roots
    from seiscore.core.settings import get_settings

    return data_roots(None, get_settings()) or None


def make_data(args: argparse.Namespace) -> int:
    """``seis velocity make-data``: generate and write the collection."""
    import numpy as np

    from seiscore.cli.output import shown
    from seiscore.data.openfwi_synth import FAMILIES, generate
    from seiscore.data.velocity import VelocityGrid, write_velocity_store

    families = tuple(f.strip() for f in args.families.split(",") if f.strip()) if args.families else FAMILIES
    out = Path(args.output)
    parts = []
    bar = _bar(args.progress, len(families), "families")
    for fam in families:  # one family at a time: the bar advances, the result equals one generate() call
        parts.append(generate(args.per_family, families=(fam,), shape=tuple(args.shape), seed=args.seed))
        bar.update(1)
    bar.close()
    models = np.concatenate([p[0] for p in parts], axis=0)
    names = [n for p in parts for n in p[1]]
    labels = [f for p in parts for f in p[2]]
    recipe = {"n_per_family": args.per_family, "families": list(families), "shape": list(args.shape), "seed": args.seed}
    if out.suffix == ".npy":
        from seiscore.core.safety import check_write_target, replace_file

        target = check_write_target(out, what="velocity file", roots=_roots())
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.seiscore-tmp")
        if target.exists() and not args.overwrite:
            raise FileExistsError(f"velocity file {target} exists; pass --overwrite to replace it")
        with open(tmp, "wb") as fh:
            np.save(fh, models[:, None])
        path = replace_file(tmp, target)
    else:
        path = write_velocity_store(
            out,
            models,
            grid=VelocityGrid(dz=args.spacing, dx=args.spacing),
            names=names,
            family=labels,
            attrs={"source": "seiscore.data.openfwi_synth", "generator": recipe},
            overwrite=args.overwrite,
            roots=_roots(),
        )
    print(f"{len(names)} models of {args.shape[0]} x {args.shape[1]} ({len(families)} families) -> {shown(path)}")
    return 0


def _bar(enabled: bool | None, total: int, unit: str):
    """A tqdm bar on stderr when enabled (None: when stderr is a terminal), else a do-nothing one."""
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, unit=unit.removesuffix("s"), desc=unit, file=sys.stderr)

    class _Off:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    return _Off()


def archive_info(path: str | Path) -> dict:
    """The facts ``seis velocity info`` prints: card, sizes and the three compression ratios (from the archive's
    own byte counts), bytes on disk, codec mix, families."""
    import numpy as np

    from seiscore.core.lineage import path_size
    from seiscore.methods.siren.archive import open_archive

    arc = open_archive(path)
    card = dict(arc.card or {})
    n = len(arc.names)
    per = arc.model_bytes()
    ratios = arc.compression_ratios()
    families: dict[str, int] = {}
    for f in arc.family or []:
        families[str(f)] = families.get(str(f), 0) + 1
    disk = path_size(path)
    return {
        "archive": str(Path(path).resolve()),
        "models": n,
        "grid": {"shape": list(arc.shape), **arc.grid.model_dump()},
        "latent_dim": int(arc.config.latent_dim),
        "latent_dtype": arc.latent_dtype,
        "decoder_parameters": int(arc.config.n_parameters()),
        "codec_mix": dict(sorted(ratios["codecs"].items())),
        "sizes": {
            "raw_bytes_per_model": ratios["raw_bytes_per_model"],
            "mean_bytes_per_model": round(float(per.mean()), 1),
            "max_bytes_per_model": int(per.max()),
            "decoder_bytes": arc.decoder_bytes(),
            "ratio_per_model": round(ratios["per_model"], 3),
            "ratio_amortised": round(ratios["amortised"], 3),
            "ratio_float16_latents": round(ratios["float16"], 3),
        },
        "bytes_on_disk": disk,
        "ratio_on_disk": round(n * int(np.prod(arc.shape)) * 4 / max(disk, 1), 3),
        "families": families,
        "max_error": card.get("max_error"),
        "max_abs_error": card.get("max_abs_error"),
        "collection": card.get("collection"),
        "source_hash": card.get("source_hash"),
        "decoder": card.get("decoder"),
    }


def info(args: argparse.Namespace) -> int:
    """``seis velocity info``: print the archive's card."""
    facts = archive_info(args.archive)
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
        return 0
    s = facts["sizes"]
    g = facts["grid"]
    print(f"{facts['archive']}")
    print(f"  collection      : {facts['collection']} ({facts['models']} models)")
    print(f"  grid            : {g['shape'][0]} x {g['shape'][1]}, dz {g['dz']:g} m, dx {g['dx']:g} m")
    print(f"  latents         : {facts['latent_dim']} x {facts['latent_dtype']}")
    print(f"  decoder         : {facts['decoder_parameters']:,} parameters ({4 * facts['decoder_parameters']:,} B)")
    print(
        f"  bytes per model : mean {s['mean_bytes_per_model']}, max {s['max_bytes_per_model']} "
        f"(raw {s['raw_bytes_per_model']})"
    )
    print(f"  ratio per model : {s['ratio_per_model']}:1 (latent and payloads only)")
    print(f"  ratio amortised : {s['ratio_amortised']}:1 (with the decoder)")
    print(f"  ratio float16   : {s['ratio_float16_latents']}:1 (per model, were the latents float16)")
    print(f"  on disk         : {facts['bytes_on_disk']:,} B ({facts['ratio_on_disk']}:1 against raw float32)")
    print(f"  codec mix       : {', '.join(f'{k} {v}' for k, v in facts['codec_mix'].items())}")
    if facts["max_error"] is not None:
        print(f"  error bound     : {facts['max_error']} m/s (largest error {facts['max_abs_error']} m/s)")
    if facts["families"]:
        print(f"  families        : {', '.join(f'{k} {v}' for k, v in facts['families'].items())}")
    return 0
