"""Commands for data at rest: ``rotate-key``, ``spool replay|status``, ``retention``."""

from __future__ import annotations

import argparse

from model.cli.common import EXIT_OK, CommandError, add_command
from model.serving.predlog import spool
from model.serving.predlog.insert import DB_UNAVAILABLE
from model.settings import get_settings
from model.store import crypto
from model.store.db import get_engine, migrate, session_scope
from model.store.retention import purge_old
from model.store.rotation import rotate_data_key


def cmd_rotate_key(args: argparse.Namespace) -> int:
    if args.generate:
        print(crypto.generate_key())
        return EXIT_OK
    settings = get_settings()
    engine = get_engine(settings.database_url)
    migrate(engine)
    try:
        with session_scope(engine) as session:
            result = rotate_data_key(session, settings=settings, batch_rows=args.batch)
    except (crypto.DataKeyError, crypto.DecryptionError) as error:
        raise CommandError(str(error)) from None
    print(
        f"re-encrypted {result.artifacts} model artifacts and {result.log_rows} log rows "
        f"({result.texts} student ids and notes) under key {result.key_id}; "
        "MATHSIGHT_DATA_KEY_PREVIOUS can now be removed"
    )
    return EXIT_OK


def cmd_spool_replay(args: argparse.Namespace) -> int:
    directory = spool.spool_dir(get_settings())
    try:
        result = spool.replay_spool(get_engine(), directory)
    except DB_UNAVAILABLE as error:
        raise CommandError(f"the database is still unreachable ({type(error).__name__}); the spool is kept") from None
    if result.busy:
        raise CommandError("another replay is running; try again when it has finished")
    print(f"{result.read} spooled rows: {result.inserted} inserted, {result.duplicates} were already logged")
    if result.unreadable:
        print(f"{result.unreadable} unreadable lines kept in {directory} (*.unreadable)")
    return EXIT_OK


def cmd_spool_status(args: argparse.Namespace) -> int:
    directory = spool.spool_dir(get_settings())
    files = spool.pending_files(directory)
    print(f"{spool.pending_rows(directory)} rows waiting in {len(files)} spool files under {directory}")
    return EXIT_OK


def cmd_retention(args: argparse.Namespace) -> int:
    settings = get_settings()
    days = args.days if args.days is not None else settings.retention_days
    if days is None:
        raise CommandError("no retention period: pass --days N or set MATHSIGHT_RETENTION_DAYS")
    engine = get_engine(settings.database_url)
    migrate(engine)
    try:
        with session_scope(engine) as session:
            result = purge_old(session, days, dry_run=args.dry_run)
    except ValueError as error:
        raise CommandError(str(error)) from None
    verb = "would delete" if result.dry_run else "deleted"
    print(
        f"{verb} {result.log_rows} prediction log rows and {result.feedback_rows} feedback rows "
        f"older than {result.cutoff:%Y-%m-%d %H:%M} UTC ({days} days)"
    )
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``rotate-key``, ``spool`` and ``retention``."""
    help = "re-encrypt artifacts and log inputs under MATHSIGHT_DATA_KEY"
    rotate = add_command(sub, "rotate-key", cmd_rotate_key, help)
    rotate.description = ("re-encrypt model artifacts and logged inputs stored under MATHSIGHT_DATA_KEY_PREVIOUS "
                          "(or in clear) with MATHSIGHT_DATA_KEY, one transaction per batch")  # fmt: skip
    rotate.add_argument("--generate", action="store_true", help="only print a new random data key")
    rotate.add_argument("--batch", type=int, default=2_000, metavar="N",
                        help="log rows per transaction (default: %(default)s)")  # fmt: skip

    help = "log rows kept locally while the database was down"
    actions = sub.add_parser("spool", help=help, description=help).add_subparsers(dest="action", required=True)
    add_command(actions, "replay", cmd_spool_replay, "insert spooled rows into the log, exactly once")
    add_command(actions, "status", cmd_spool_status, "how many rows wait in the spool")

    retention = add_command(sub, "retention", cmd_retention,
                            "delete prediction log rows (and their feedback) older than N days")  # fmt: skip
    retention.add_argument("--days", type=int, metavar="N", help="age in days (default: MATHSIGHT_RETENTION_DAYS)")
    retention.add_argument("--dry-run", action="store_true", help="count, delete nothing")
