"""``seis lineage flush``: re-send the OpenLineage events spooled while the endpoint was unreachable."""

from __future__ import annotations

import sys


def register(sub) -> None:
    """Add ``seis lineage flush``."""
    p = sub.add_parser("lineage", help="OpenLineage events: re-send those spooled while the endpoint was down")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    f = actions.add_parser("flush", help="send the spooled events, oldest first, and report how many remain")
    f.add_argument("--url", help="endpoint (default SEIS_OPENLINEAGE_URL)")
    f.add_argument("--lineage-dir", help="folder of the spool (default SEIS_LINEAGE_DIR or openlineage)")
    f.set_defaults(func=_flush)


def _flush(args) -> int:
    from seiscore.cli import CLIError
    from seiscore.core.lineage_spool import flush_spool, spool_path
    from seiscore.core.settings import get_settings

    settings = get_settings(openlineage_url=args.url, lineage_dir=args.lineage_dir)
    spool = spool_path(settings.lineage_dir)
    if not settings.openlineage_url:
        raise CLIError(f"no OpenLineage endpoint to send {spool} to: set SEIS_OPENLINEAGE_URL or pass --url")
    sent, left, why = flush_spool(settings.openlineage_url, settings.lineage_dir)
    print(f"sent {sent} spooled event(s) to {settings.openlineage_url}; {left} remain in {spool}")
    if left:
        print(
            f"seis lineage flush: the endpoint did not take the next event ({why}); run it again later", file=sys.stderr
        )
        return 1
    return 0
