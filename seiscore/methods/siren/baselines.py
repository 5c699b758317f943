"""The spec §6 measurement on generated maps: every conventional codec at equal bytes and at equal error.

``python -m seiscore.methods.siren.baselines [--per-family N] [--held-out N] [--budgets 1024 512]
[--max-error 10] [--json FILE]``: generates ``per-family`` maps of each of the ten OpenFWI-like families, keeps
``held-out`` of each family for measuring and fits the PCA basis (256 components) on the rest, then prints the
equal-bytes tables (:func:`~seiscore.methods.siren.codecs.equal_bytes_table`) and the equal-error table
(:func:`~seiscore.methods.siren.codecs.equal_error_table`).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Sequence

import numpy as np

from seiscore.data.openfwi_synth import FAMILIES, generate
from seiscore.methods.siren.codecs import equal_bytes_table, equal_error_table, fit_pca


def split_collection(per_family: int, held_out: int, seed: int = 0, shape=(70, 70)):
    """``(train, test, test_labels)``: the last ``held_out`` maps of each family are the test set."""
    if not 0 < held_out < per_family:
        raise ValueError(f"held_out must be between 1 and per_family - 1, got {held_out} of {per_family}")
    models, _, labels, _ = generate(per_family, FAMILIES, shape=shape, seed=seed)
    index = np.arange(len(labels)) % per_family
    test = index >= per_family - held_out
    return models[~test], models[test], [lab for lab, t in zip(labels, test) if t]


def measure(
    per_family: int = 100,
    held_out: int = 20,
    budgets: Sequence[int] = (1024, 512),
    max_error: float | None = 10.0,
    n_components: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """The §6 tables on a generated collection (see the module docstring)."""
    t0 = time.perf_counter()
    train, test, labels = split_collection(per_family, held_out, seed)
    basis = fit_pca(train, n_components)
    out: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "pca_components": basis.n_components}
    out["tables"] = {int(b): equal_bytes_table(test, int(b), pca_basis=basis, families=labels) for b in budgets}
    if max_error is not None:
        out["equal_error"] = equal_error_table(test, max_error, pca_basis=basis, families=labels)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.methods.siren.baselines")
    ap.add_argument("--per-family", type=int, default=100)
    ap.add_argument("--held-out", type=int, default=20)
    ap.add_argument("--budgets", type=int, nargs="+", default=[1024, 512])
    ap.add_argument("--max-error", type=float, default=10.0)
    ap.add_argument("--components", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    res = measure(a.per_family, a.held_out, a.budgets, a.max_error, a.components, a.seed)
    for budget, rows in res["tables"].items():
        print(f"\n## {budget} B per model ({res['n_test']} held-out maps, PCA on {res['n_train']})")
        print("| codec | PSNR_g mean | median | pooled | exact maps | SSIM | max err (m/s) | mean bytes | failed |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            cols = ("psnr_g", "psnr_g_median", "psnr_g_pooled", "n_exact", "ssim", "max_abs_error", "mean_bytes")
            cols = (*cols, "n_failed")
            print("| " + r["codec"] + " | " + " | ".join(_fmt(r.get(k, "-")) for k in cols) + " |")
    if "equal_error" in res:
        print(f"\n## max error {a.max_error:g} m/s: bytes per model")
        print("| codec | mean bytes | failed | " + " | ".join(FAMILIES) + " |")
        print("|---|---|---|" + "---|" * len(FAMILIES))
        for r in res["equal_error"]:
            fam = r.get("bytes_by_family", {})
            print(
                f"| {r['codec']} | {_fmt(r.get('mean_bytes', '-'))} | {r['n_failed']} | "
                + " | ".join(_fmt(fam.get(f, "-")) for f in FAMILIES)
                + " |"
            )
    print(f"\n{res['seconds']} s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
