"""What every command shares: the exit codes, the user-facing failure, and small helpers.

Exit codes: 0 ok, 1 an alert fired (``monitor --check``), 2 bad usage or rejected input (any
:class:`~model.errors.UserError`, printed without a traceback), 3 some rows rejected (``predict``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from model.errors import UserError
from model.schema.fields import SETUPS
from model.settings import Settings
from model.store import registry
from model.store.db import get_engine, migrate, session_scope

EXIT_OK, EXIT_ALERT, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
SETUP_CHOICES = (*SETUPS, "all")
DATA_HELP = "the student file (default: MATHSIGHT_DATA, else the shared or cached student-mat.csv, else downloaded)"
TRAINING_DATA_HELP = (
    "a CSV of the schema (';' or ','; the 30 attributes, G1, G2 and G3, the codebook's spellings), checked row by "
    "row like an upload: any problem is listed and nothing is done (exit 2). Default: the bundled UCI maths file "
    "(MATHSIGHT_DATA, else the shared or cached student-mat.csv, else downloaded; its SHA-256 checked)"
)
BY_HELP = "who does it, as the registry and the audit log record it"

Command = Callable[[argparse.Namespace], int]


class CommandError(UserError):
    """A user-facing failure of a command: printed without a traceback, exit code 2."""


def add_command(sub: argparse._SubParsersAction, name: str, func: Command, help: str) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` (its ``help`` is also the description of its own ``--help``)."""
    command = sub.add_parser(name, help=help, description=help)
    command.set_defaults(func=func)
    return command


def add_data_option(command: argparse.ArgumentParser) -> None:
    """The ``--data FILE`` option of the commands that read the bundled UCI file (SHA-256 checked)."""
    command.add_argument("--data", type=Path, metavar="FILE", help=DATA_HELP)


def add_training_data_option(command: argparse.ArgumentParser, what: str) -> None:
    """The ``--data FILE`` option of the commands that take any training file of the schema (``what`` it is for)."""
    command.add_argument("--data", type=Path, metavar="FILE", help=f"{what}: {TRAINING_DATA_HELP}")


def migrated_engine(settings: Settings) -> Engine:
    """The configured database, migrated to the newest schema, its old-scheme model signatures renewed."""
    engine = get_engine(settings.database_url)
    migrate(engine)
    with session_scope(engine) as session:
        registry.resign_legacy_versions(session, settings=settings)
    return engine


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """The command's one transaction on the configured database (migrated first)."""
    with session_scope(migrated_engine(settings)) as session:
        yield session


def chosen_setups(choice: str) -> list[str]:
    """The setups named by a ``--setup`` choice (every setup for ``all``)."""
    return list(SETUPS) if choice == "all" else [choice]
