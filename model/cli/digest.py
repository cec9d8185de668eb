"""The weekly digest: ``python -m model digest [--dry-run] [--today YYYY-MM-DD]`` (cron-able).

E-mails each active teacher who opted in on their profile their "needs attention" list (student ids
and reasons only) over the ``MATHSIGHT_SMTP_*`` settings. ``--dry-run`` prints the messages and sends
nothing. A teacher who cannot be reached is reported and the others still get theirs.
Exit codes: 0 every digest sent, 1 some could not be sent, 2 not configured or bad usage.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from model.cli.common import EXIT_ALERT, EXIT_OK, CommandError, add_command, transaction
from model.serving.digest import SmtpConfig, build_message, collect_digests, send_digests
from model.settings import get_settings


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'--today: "{text[:40]}" is not a date (allowed: YYYY-MM-DD)') from None


def cmd_digest(args: argparse.Namespace) -> int:
    settings = get_settings()
    config = SmtpConfig.from_settings(settings)
    if not args.dry_run:
        for name, value in (("MATHSIGHT_SMTP_HOST", config.host), ("MATHSIGHT_SMTP_FROM", config.sender)):
            if not value.strip():
                raise CommandError(f"{name} is not set: the digest has no mail server to send through "
                                   "(use --dry-run to see what would be sent)")  # fmt: skip
    today = args.today or date.today()
    with transaction(settings) as session:
        digests = collect_digests(session, settings, today)
    if args.dry_run:
        for digest in digests:
            if digest.problem is not None:
                print(f"  would not be sent to {digest.username}: {digest.problem}", file=sys.stderr)
                continue
            print(build_message(digest, config.sender or "(MATHSIGHT_SMTP_FROM)", today).as_string())
        print(f"dry run: {len(digests)} digest(s) would be sent, none was")
        return EXIT_OK
    report = send_digests(digests, config, today)
    print(f"sent {report.sent} of {len(digests)} digest(s)")
    for username, reason in report.failed:
        print(f"  not sent to {username}: {reason}", file=sys.stderr)
    return EXIT_ALERT if report.failed else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``digest`` command."""
    help = "e-mail each teacher who opted in their needs-attention list (weekly, from cron)"
    command = add_command(sub, "digest", cmd_digest, help)
    command.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    command.add_argument("--today", type=_day, metavar="YYYY-MM-DD", help="the list's day (default: today)")
