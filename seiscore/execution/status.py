"""The state of a survey's output, read from its versions and lock: what ``seis status`` prints (no Prefect)."""

from __future__ import annotations

from pathlib import Path


def survey_status(survey: str, catalog: str) -> dict:
    """State (published / in-progress / interrupted / unknown-owner / missing), the published version and any
    staging version of a survey's output (no Prefect). ``complete``, ``tiles``, ``metrics`` describe the
    published version; ``last_run`` is the most recent run (the staging version's, else the published one's)."""
    from seiscore.data.catalog import load_catalog
    from seiscore.execution.versions import survey_state

    entry = load_catalog(catalog).get(survey)
    out = Path(entry.output)
    st = survey_state(out)
    pub, stg = st["published"], st["staging"]
    status: dict = {
        "survey": survey,
        "output": str(out),
        "state": st["state"],
        "exists": pub is not None,
        "complete": bool(pub and pub["complete"]),
        "tiles": pub and pub["tiles"],
        "published": pub,
        "staging": stg,
        "owner": st["owner"],
        "leftovers": st["leftovers"],
    }
    last = (stg and stg["run"]) or (pub and pub["run"])
    if last:
        status["last_run"] = {k: v for k, v in last.items() if k not in ("metrics", "params")}
    if pub and pub["run"]:
        status["metrics"] = pub["run"]["metrics"]
    return status
