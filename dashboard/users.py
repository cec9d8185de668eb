"""Manage dashboard accounts from scripts: ``python -m dashboard.users add NAME --role teacher|admin``.

The password of ``add`` and ``set-password`` is read from standard input (the first line; asked twice,
hidden, on a terminal), never from the command line where other users could see it.
Exit codes: 0 done, 2 refused (the message says why).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from model.accounts import users
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import ROLES

EXIT_OK, EXIT_REFUSED = 0, 2
ACTOR = "cli"


def read_password() -> str:
    """The new password: typed twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise users.AccountError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_add(args: argparse.Namespace) -> str:
    with session_scope(get_engine()) as session:
        info = users.create_user(session, args.username, read_password(), role=args.role, name=args.name, actor=ACTOR)
    return f"added {info.role} {info.username}"


def cmd_set_password(args: argparse.Namespace) -> str:
    with session_scope(get_engine()) as session:
        users.set_password(session, args.username, read_password(), actor=ACTOR)
    return f"password of {args.username} replaced"


def cmd_deactivate(args: argparse.Namespace) -> str:
    with session_scope(get_engine()) as session:
        users.deactivate(session, args.username, actor=ACTOR)
    return f"{args.username} deactivated"


def cmd_activate(args: argparse.Namespace) -> str:
    with session_scope(get_engine()) as session:
        users.activate(session, args.username, actor=ACTOR)
    return f"{args.username} reactivated"


def cmd_list(args: argparse.Namespace) -> str:
    with session_scope(get_engine()) as session:
        accounts = users.list_users(session)
    lines = [f"{'username':<24}{'role':<9}{'active':<8}name"]
    lines += [f"{u.username:<24}{u.role:<9}{'yes' if u.active else 'no':<8}{u.name}" for u in accounts]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard.users", description="manage dashboard accounts")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user (password from standard input)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--name", help="full name shown in the dashboard (default: the username)")
    add.set_defaults(func=cmd_add)
    for name, func, help in (
        ("set-password", cmd_set_password, "replace a password (from standard input)"),
        ("deactivate", cmd_deactivate, "stop a user from signing in"),
        ("activate", cmd_activate, "let a deactivated user sign in again"),
    ):
        command = sub.add_parser(name, help=help)
        command.add_argument("username")
        command.set_defaults(func=func)
    sub.add_parser("list", help="list the accounts").set_defaults(func=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    migrate(get_engine())
    try:
        print(args.func(args))
    except users.AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
