"""The school's own thresholds: what an admin set on the settings page, over the environment's defaults.

Only the levels a school decides are kept here (:data:`SCHOOL_FIELDS`: the risk cut-offs by
P(pass), the "risk rose" threshold of needs attention, the year's end date); every other threshold
stays a setting. :func:`load_thresholds` is the one loader every front uses (the model store
re-reads it with the active models, so predictions from the dashboard, the API and the CLI, and
their downloads, follow a change within seconds). A change is checked as a whole table (the
cut-offs must stay in order), written with an audit row, and refused as ``InvalidInput`` naming
the field.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.errors import InvalidInput, Problem
from model.i18n import N_
from model.schema.thresholds import ThresholdError, Thresholds, setting
from model.settings import Settings
from model.store.audit import audit
from model.store.tables import SchoolSetting, utcnow

SCHOOL_FIELDS = {
    "risk_high_below": N_("P(pass) below this: high risk (a share between 0 and 1)"),
    "risk_medium_below": N_("P(pass) below this: medium risk (above the high-risk level, at most 1)"),
    "attention_risk_rise": N_("a fall in P(pass) larger than this since the previous prediction needs attention"),
    "year_end": N_("the school year's last day (YYYY-MM-DD): then a student without a final grade needs attention"),
}


def _parse(name: str, text: str) -> Any:
    if name == "year_end":
        return date.fromisoformat(text) if text else None
    return float(text)


def _coerce(name: str, value: Any) -> Any:
    """A value as given on the page or the command line: a date (or None) for ``year_end``, else a float."""
    if name == "year_end":
        if value is None or isinstance(value, date):
            return value
        return _parse(name, str(value).strip())
    return float(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else repr(float(value))


def stored_values(session: Session) -> dict[str, Any]:
    """The values the school set (field -> value), without the defaults."""
    rows = session.execute(sa.select(SchoolSetting.name, SchoolSetting.value)).all()
    return {name: _parse(name, value) for name, value in rows if name in SCHOOL_FIELDS}


def load_thresholds(session: Session, settings: Settings) -> Thresholds:
    """The threshold table: the settings' values with the school's own over them."""
    base = Thresholds.from_settings(settings)
    try:
        return replace(base, **stored_values(session))
    except ThresholdError:  # stored values out of step with new defaults: the defaults win
        return base


def set_school_thresholds(
    session: Session, settings: Settings, actor: str, user_id: int | None, **values: Any
) -> Thresholds:
    """Set some of :data:`SCHOOL_FIELDS` (a value of None for ``year_end`` clears it); returns the new table.

    Raises ``InvalidInput`` naming each field that is not a number / date, or that breaks the order
    of the levels; nothing is written then."""
    unknown = sorted(set(values) - set(SCHOOL_FIELDS))
    if unknown:
        raise ValueError(f"not a school setting: {', '.join(unknown)}")
    problems, parsed = [], {}
    for name, value in values.items():
        try:
            parsed[name] = _coerce(name, value)
        except (TypeError, ValueError):
            message = f'field "{name}": {value!r} is not a {"date" if name == "year_end" else "number"}'
            problems.append(Problem(None, name, str(value), message, SCHOOL_FIELDS[name]))
    if problems:
        raise InvalidInput(problems)
    current = load_thresholds(session, settings)
    try:
        table = replace(current, **parsed)
    except ThresholdError as error:
        field = next((name for name in parsed if setting(name) in str(error)), next(iter(parsed)))
        raise InvalidInput([Problem(None, field, _text(parsed[field]), f'field "{field}": {error}',
                                    SCHOOL_FIELDS[field])]) from None  # fmt: skip
    now = utcnow()
    for name, value in parsed.items():
        row = session.get(SchoolSetting, name)
        if row is None:
            session.add(SchoolSetting(name=name, value=_text(value), updated_at=now, updated_by=actor))
        else:
            row.value, row.updated_at, row.updated_by = _text(value), now, actor
    session.flush()
    audit(session, "school_thresholds_set", actor, user_id, **{name: _text(v) for name, v in parsed.items()})
    return table
