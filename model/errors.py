"""Errors meant for the people who use mathsight, apart from programming faults.

Anything the core raises because of what a user gave or asked for (a bad cell, an unusable file, an
unknown version, a wrong key) is a :class:`UserError`, often carrying :class:`Problem` rows with the
row, field, value and what is allowed. Each front turns one into its own form: a red box beside the
field, a 400 JSON body, a CLI message with exit code 2. Any other exception is a fault of ours: the
fronts log it as an error with a request id and show a generic message, never a traceback.

Row numbers
    A :class:`Problem`'s ``row`` is the row number the user sees in a spreadsheet, **counting the
    header line**: the header is row 1 and the first data row is row 2. Blank lines count as rows
    (a spreadsheet shows them) but are skipped, never rejected. Messages read ``row 2, column ...``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_SHOWN = 60
"""At most this many characters of a user's value are echoed in a :class:`Problem` (then "...")."""
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone UTF-16 surrogate (``"\\ud800"``): it cannot be written as UTF-8."""
    return LONE_SURROGATE.search(text) is not None


def safe_text(text: str) -> str:
    """``text`` with every lone surrogate written as its escape (``\\ud800``), so it can be encoded."""
    return LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text) if has_lone_surrogate(text) else text


def shown_value(value: Any) -> str | None:
    """A user's value as a problem report echoes it: encodable, and at most ``MAX_SHOWN`` characters."""
    if value is None:
        return None
    text = safe_text(str(value))
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    ``row`` is the spreadsheet row number counting the header line (first data row = 2), ``None`` for
    a single record or a whole-file problem; ``column`` is the field name (``None`` when the problem
    is not about one column); ``value`` the offending text as given; ``allowed`` what may go there.
    """

    row: int | None
    column: str | None
    value: str | None
    message: str
    allowed: str | None = None

    def __post_init__(self) -> None:
        """Values are echoed short and encodable, whoever builds the problem (see :func:`shown_value`)."""
        object.__setattr__(self, "value", shown_value(self.value))
        object.__setattr__(self, "message", safe_text(self.message))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class UserError(Exception):
    """The base of every error meant for a user: its message is safe and useful to show as it is.

    ``problems`` holds the row/field detail when there is any (empty otherwise)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems: list[Problem] = list(problems)


class BatchRejected(UserError):
    """The whole file is unusable (not text, empty, no data rows, missing columns, too many rows)."""

    def __init__(self, message: str) -> None:
        self.problem = Problem(row=None, column=None, value=None, message=message)
        super().__init__(message, [self.problem])


class InvalidInput(UserError):
    """A single record has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems), problems)
