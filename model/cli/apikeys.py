"""``python -m model apikey create|revoke|list``: API keys from the command line (audited as ``cli``)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from model.accounts.apikeys import ApiKeyError, create_key, list_keys, revoke_key, user_id_for
from model.cli.main import EXIT_OK, CommandError
from model.settings import Settings, get_settings
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import SCOPES


@contextmanager
def _transaction(settings: Settings) -> Iterator[Session]:
    """The command's one transaction on the configured database (migrated first)."""
    engine = get_engine(settings.database_url)
    migrate(engine)
    with session_scope(engine) as session:
        yield session


def cmd_create(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        with _transaction(settings) as session:
            plaintext, info = create_key(session, user_id_for(session, args.username), args.scope, actor=args.by,
                                         settings=settings)  # fmt: skip
    except ApiKeyError as error:
        raise CommandError(str(error)) from None
    print(plaintext)
    print(f"created key {info.prefix} ({info.scope}) for {info.username}; it is shown only now, keep it safe")
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    try:
        with _transaction(get_settings()) as session:
            info = revoke_key(session, args.prefix, actor=args.by)
    except ApiKeyError as error:
        raise CommandError(str(error)) from None
    print(f"revoked key {info.prefix} of {info.username}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with _transaction(get_settings()) as session:
        keys = list_keys(session, include_revoked=args.all)
    print(f"{'prefix':<10}{'user':<20}{'scope':<9}{'created':<18}{'last used':<18}status")
    for key in keys:
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        print(f"{key.prefix:<10}{key.username:<20}{key.scope:<9}{key.created_at:%Y-%m-%d %H:%M}  {used:<18}{status}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``apikey`` command and its sub-commands."""
    apikey = subparsers.add_parser("apikey", help="create, revoke and list API keys",
                                   description="create, revoke and list API keys")  # fmt: skip
    actions = apikey.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key for a user (printed once)")
    create.add_argument("username")
    create.add_argument("--scope", choices=SCOPES, default="predict")
    create.set_defaults(func=cmd_create)
    revoke = actions.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(func=cmd_revoke)
    listing = actions.add_parser("list", help="list keys (never the secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_list)
    for command in (create, revoke):
        command.add_argument("--by", default="cli", help="who does it (for the audit log)")
