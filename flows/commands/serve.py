"""``seis serve``: serve the Prefect deployments (nightly schedule) from this process."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add ``seis serve`` (always logs: a server's INFO lines are its output)."""
    p = sub.add_parser("serve", help="serve the process-survey / reprocess-archive deployments (Prefect)")
    p.add_argument("--cron", help="cron schedule (default SEIS_SCHEDULE_CRON or '0 2 * * *')")
    p.add_argument("--timezone", help="schedule time zone (default SEIS_SCHEDULE_TIMEZONE or UTC)")
    p.add_argument("--survey", default="synthetic_demo", help="survey of the nightly process-survey deployment")
    p.set_defaults(func=_serve, verbose_logs=True)


def _serve(args: argparse.Namespace) -> int:
    from deployments.serve import serve_deployments

    serve_deployments(args.cron, args.timezone, args.survey)
    return 0
