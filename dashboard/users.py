"""``python -m dashboard.users ...``: the old entry of the account commands, kept so scripts go on working.

The commands now live in ``python -m model users ...`` (:mod:`model.cli.users`); this module only
forwards its arguments there, so both entries take the same arguments, print the same and exit with
the same codes (0 done, 2 refused).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from model.cli.main import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model users`` with ``argv`` (default: this script's arguments)."""
    return cli_main(["users", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
