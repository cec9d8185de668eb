"""The command line: ``python -m model COMMAND``; every command group adds itself with ``register``.

Exit codes (:mod:`model.cli.common`): 0 ok, 2 bad usage or rejected input, 3 some rows rejected,
1 an alert fired (``monitor --check``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from model.cli import apikeys, digest, install, models, monitor, predict, security, users
from model.cli.common import EXIT_USAGE
from model.errors import UserError
from model.logs import configure_logging
from model.serving.service import ModelUnavailable, NoActiveModel
from model.settings import get_settings

GROUPS = (install, models, predict, monitor, apikeys, users, security, digest)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``python -m model`` command."""
    parser = argparse.ArgumentParser(prog="python -m model", description="mathsight core commands")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user-facing error is printed without a traceback and exits with code 2."""
    args = build_parser().parse_args(argv)
    configure_logging(get_settings())
    try:
        return args.func(args)
    except (UserError, NoActiveModel) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, ModelUnavailable):
            print(f"  {error.reason}", file=sys.stderr)
        return EXIT_USAGE
