"""Dashboard accounts from scripts: ``python -m model users add NAME --role teacher|admin``,
``set-password``, ``deactivate``, ``activate``, ``sign-out``, ``list`` (audited as ``cli``). A password
change, a deactivation and ``sign-out`` end every dashboard session of the user.

The password of ``add`` and ``set-password`` is read from standard input (the first line; asked twice,
hidden, on a terminal), never from the command line where other users could see it.
Exit codes: 0 done, 2 refused (the message says why).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from model.accounts import sessions, users
from model.cli.common import EXIT_OK, add_command, transaction
from model.settings import get_settings
from model.store.tables import ROLES

ACTOR = "cli"


def read_password() -> str:
    """The new password: typed twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise users.AccountError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_add(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        info = users.create_user(session, args.username, read_password(), role=args.role, name=args.name, actor=ACTOR)
    print(f"added {info.role} {info.username}")
    return EXIT_OK


def cmd_set_password(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        users.set_password(session, args.username, read_password(), actor=ACTOR)
    print(f"password of {args.username} replaced")
    return EXIT_OK


def cmd_deactivate(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        users.deactivate(session, args.username, actor=ACTOR)
    print(f"{args.username} deactivated")
    return EXIT_OK


def cmd_activate(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        users.activate(session, args.username, actor=ACTOR)
    print(f"{args.username} reactivated")
    return EXIT_OK


def cmd_sign_out(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        sessions.end_all(session, args.username, actor=ACTOR)
    print(f"{args.username} signed out everywhere")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        accounts = users.list_users(session)
    print(f"{'username':<24}{'role':<9}{'active':<8}name")
    for u in accounts:
        print(f"{u.username:<24}{u.role:<9}{'yes' if u.active else 'no':<8}{u.name}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``users`` command and its sub-commands."""
    help = "add, deactivate, reactivate and list dashboard accounts"
    group = sub.add_parser("users", help=help, description=f"{help} (passwords are read from standard input)")
    actions = group.add_subparsers(dest="action", required=True)
    add = add_command(actions, "add", cmd_add, "add a user (password from standard input)")
    add.add_argument("username", help="lower case letters, digits, . _ - (stored in lower case)")
    add.add_argument("--role", choices=ROLES, required=True, help="what the user may open")
    add.add_argument("--name", help="full name shown in the dashboard (default: the username)")
    for name, func, help in (
        ("set-password", cmd_set_password, "replace a password (from standard input)"),
        ("deactivate", cmd_deactivate, "stop a user from signing in"),
        ("activate", cmd_activate, "let a deactivated user sign in again"),
        ("sign-out", cmd_sign_out, "end every sign-in session of a user (all browsers, every copied cookie)"),
    ):
        add_command(actions, name, func, help).add_argument("username", help="the account's username")
    add_command(actions, "list", cmd_list, "list the accounts")
