"""``python -m model apikey create|revoke|list``: API keys from the command line (audited as ``cli``)."""

from __future__ import annotations

import argparse

from model.accounts.apikeys import ApiKeyError, create_key, list_keys, revoke_key, user_id_for
from model.cli.common import BY_HELP, EXIT_OK, CommandError, add_command, transaction
from model.settings import get_settings
from model.store.tables import SCOPES


def cmd_create(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        with transaction(settings) as session:
            plaintext, info = create_key(session, user_id_for(session, args.username), args.scope, actor=args.by,
                                         settings=settings)  # fmt: skip
    except ApiKeyError as error:
        raise CommandError(str(error)) from None
    print(plaintext)
    print(f"created key {info.prefix} ({info.scope}) for {info.username}; it is shown only now, keep it safe")
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    try:
        with transaction(get_settings()) as session:
            info = revoke_key(session, args.prefix, actor=args.by)
    except ApiKeyError as error:
        raise CommandError(str(error)) from None
    print(f"revoked key {info.prefix} of {info.username}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        keys = list_keys(session, include_revoked=args.all)
    print(f"{'prefix':<10}{'user':<20}{'scope':<9}{'created':<18}{'last used':<18}status")
    for key in keys:
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        print(f"{key.prefix:<10}{key.username:<20}{key.scope:<9}{key.created_at:%Y-%m-%d %H:%M}  {used:<18}{status}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``apikey`` command and its sub-commands."""
    help = "create, revoke and list API keys"
    actions = sub.add_parser("apikey", help=help, description=help).add_subparsers(dest="action", required=True)
    create = add_command(actions, "create", cmd_create, "create a key for a user (printed once)")
    create.add_argument("username", help="the user the key acts as")
    scope = "predict: the prediction endpoints; admin: also /metrics (default: %(default)s)"
    create.add_argument("--scope", choices=SCOPES, default="predict", help=scope)
    revoke = add_command(actions, "revoke", cmd_revoke, "revoke a key by its prefix")
    revoke.add_argument("prefix", help="the key's prefix, as `apikey list` shows it")
    listing = add_command(actions, "list", cmd_list, "list keys (never the secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    for command in (create, revoke):
        command.add_argument("--by", default="cli", metavar="NAME", help=f"{BY_HELP} (default: %(default)s)")
