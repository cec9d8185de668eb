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
from model.errors import Problem, UserError
from model.logs import configure_logging
from model.serving.service import ModelUnavailable, NoActiveModel
from model.settings import get_settings

MAX_PROBLEMS_SHOWN = 50
GROUPS = (install, models, predict, monitor, apikeys, users, security, digest)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``python -m model`` command."""
    parser = argparse.ArgumentParser(prog="python -m model", description="mathsight core commands")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def _print_problems(problems: list[Problem]) -> None:
    """The first problems of a rejected input, one a line (row, column, value and what is allowed)."""
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        allowed = f" (allowed: {problem.allowed})" if problem.allowed and "allowed" not in problem.message else ""
        print(f"  {problem.message}{allowed}", file=sys.stderr)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        print(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more", file=sys.stderr)


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
        _print_problems(getattr(error, "problems", []))
        return EXIT_USAGE
