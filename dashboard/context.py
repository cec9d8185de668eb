"""What every page shares: the settings, the engine and model store (cached per process), one
transaction per unit of work, the user, the guard.

:func:`settings` is the dashboard's one reading of the settings; pages pass them to the core.
Pages read in one :func:`transaction` per run and make each change in its own, committed before
they draw the outcome (a rerun that interrupts the script afterwards cannot undo it). Every page
starts with ``user = open_page(__file__)``: the one place roles are checked, against the page's own
entry of the page table (:mod:`dashboard.page_table`). The entry script (``dashboard/app.py``) logs
the user in and stores a :class:`CurrentUser` in the session state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dashboard import language
from dashboard.metrics import count_view
from dashboard.page_table import ROLE_NAMES, page_spec
from model.i18n import tr
from model.schema.thresholds import Thresholds
from model.settings import Settings, get_settings
from model.store.db import get_engine, migrate, session_scope

if TYPE_CHECKING:  # the model stack loads on the first prediction, not on the sign-in page
    from model.serving.service import ModelStore

USER_KEY = "mathsight_user"


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in user as the pages see it."""

    id: int
    username: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@st.cache_resource(show_spinner=False)
def _engine(url: str, _settings: Settings) -> Engine:
    """The engine of ``url``, migrated, its old-scheme model signatures renewed (``_settings``: not hashed)."""
    from model.store import registry

    engine = get_engine(url)
    migrate(engine)
    with session_scope(engine) as session:
        registry.resign_legacy_versions(session, settings=_settings)
    return engine


@st.cache_resource(show_spinner=False)
def _store(url: str, thresholds: Thresholds, _settings: Settings) -> ModelStore:
    """One store per database and threshold table; ``_settings`` (the ones both come from) are not hashed."""
    from model.serving.service import ModelStore

    return ModelStore(_engine(url, _settings), settings=_settings)


def settings() -> Settings:
    """The dashboard's settings, read from the environment once per process."""
    return get_settings()


def engine() -> Engine:
    """The migrated engine of the configured database (one per process)."""
    configured = settings()
    return _engine(configured.database_url, configured)


def store() -> ModelStore:
    """The active models (one store per process; follows promotions within seconds)."""
    configured = settings()
    return _store(configured.database_url, Thresholds.from_settings(configured), configured)


@contextmanager
def transaction() -> Iterator[Session]:
    """A session on the configured database, committed at the end (rolled back if it raised)."""
    with session_scope(engine()) as session:
        yield session


def current_user() -> CurrentUser | None:
    """The logged-in user, or None."""
    return st.session_state.get(USER_KEY)


def open_page(script: str | Path) -> CurrentUser:
    """The page guard and heading; a page calls it first, with its ``__file__``.

    Looks the page up in the page table; refuses and stops unless the signed-in user's role is one of
    its roles; else draws the page's title and returns the user. Admin-only pages also get the banner
    of open monitoring alerts.
    """
    language.apply()
    spec = page_spec(script)
    user = current_user()
    page = Path(script).stem
    if user is None:
        count_view(page, "signed_out")
        st.error(tr("Please log in to see this page."))
        st.stop()
    if user.role not in spec.roles:
        count_view(page, "refused")
        allowed = tr(" or ").join(tr(ROLE_NAMES.get(role, role)) for role in spec.roles)
        st.error(tr("Access refused: this page is for {roles} accounts; you are signed in as a {role}.",
                    roles=allowed, role=tr(ROLE_NAMES.get(user.role, user.role))))  # fmt: skip
        st.stop()
    if spec.roles == ("admin",):
        from dashboard.monitor_charts import open_alerts_banner

        with transaction() as session:
            open_alerts_banner(session)
    count_view(page, "shown")
    st.title(tr(spec.title))
    return user
