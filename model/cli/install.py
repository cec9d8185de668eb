"""Getting an installation ready: ``fetch-data``, ``migrate``, ``bootstrap`` and ``compile-translations``."""

from __future__ import annotations

import argparse

from model import i18n
from model.accounts.users import ensure_first_admin, first_admin_message
from model.cli.common import EXIT_OK, add_command, add_data_option, migrated_engine
from model.ml import dataset
from model.ml.training import BOOTSTRAP_RUNS, ensure_default_models
from model.settings import get_settings
from model.store import registry
from model.store.db import get_engine, migrate, session_scope


def cmd_fetch_data(args: argparse.Namespace) -> int:
    print(dataset.fetch(args.data, get_settings()))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    print(f"database at revision {migrate(engine)}")
    with session_scope(engine) as session:
        resigned = registry.resign_legacy_versions(session, settings=settings)
    for version_id in resigned:
        print(f"re-signed model version {version_id} (its signature now binds its id, setup and metrics)")
    return EXIT_OK


def cmd_bootstrap(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = migrated_engine(settings)
    frame = dataset.load_raw(args.data, settings)
    with session_scope(engine) as session:
        created = ensure_default_models(session, frame, runs=args.runs, settings=settings)
    for version_id in created:
        print(f"trained and activated {version_id}")
    if not created:
        print("every setup already has an active model")
    with session_scope(engine) as session:
        password = ensure_first_admin(session, settings=settings)
    if password is not None:
        print(first_admin_message(password, settings=settings), flush=True)
    return EXIT_OK


def cmd_compile_translations(args: argparse.Namespace) -> int:
    for path in i18n.compile_catalogs():
        print(f"compiled {path}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``fetch-data``, ``migrate``, ``bootstrap`` and ``compile-translations``."""
    add_command(sub, "compile-translations", cmd_compile_translations,
                "compile the dashboard's language catalogs (locales/*/*.po) into .mo files")  # fmt: skip
    add_data_option(add_command(sub, "fetch-data", cmd_fetch_data, "obtain and verify student-mat.csv"))
    add_command(sub, "migrate", cmd_migrate, "upgrade the database schema and re-sign model versions of the old scheme")
    boot = add_command(sub, "bootstrap", cmd_bootstrap, "migrate, then train and activate missing default models")
    add_data_option(boot)
    boot.add_argument("--runs", type=int, default=BOOTSTRAP_RUNS, metavar="N",
                      help="protocol runs scored per version (default: %(default)s)")  # fmt: skip
