"""The dashboard's script, served by ``dashboard/server.py`` (``streamlit run dashboard/server.py``).

Checks the settings, makes sure an admin exists, signs the user in and builds the navigation
for their role from the page table (``dashboard/page_table.py``). Each page guards itself with
``dashboard.context.open_page``, which reads the same table.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from streamlit.navigation.page import StreamlitPage  # noqa: E402

from dashboard import auth, context, language, oidc, page_table  # noqa: E402
from dashboard.context import CurrentUser, engine  # noqa: E402
from dashboard.profile import apply_user_language, profile_section  # noqa: E402
from dashboard.text import md  # noqa: E402
from model.accounts.users import AccountError, ensure_first_admin, first_admin_message  # noqa: E402
from model.i18n import tr  # noqa: E402
from model.logs import configure_logging  # noqa: E402
from model.settings import Settings  # noqa: E402


def _fail(message: str) -> NoReturn:
    """Show why the app cannot run, tell the terminal too, and stop."""
    print(f"mathsight: cannot start: {message}", file=sys.stderr, flush=True)  # not shown to users
    st.error(tr("mathsight cannot start: {reason}", reason=message), icon=":material/error:")
    st.stop()


def _settings() -> Settings:
    try:
        return context.settings()
    except ValidationError as error:
        _fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors()))  # not shown to users


@st.cache_resource(show_spinner=False)
def _logging(log_dir: str) -> None:
    """Once per process and log directory: the product's JSON logs."""
    configure_logging(context.settings())


@st.cache_resource(show_spinner=False)
def _first_admin(database_url: str) -> None:
    """Once per process and database: create the first admin and print its password to the terminal."""
    settings = context.settings()
    with context.transaction() as session:
        password = ensure_first_admin(session, settings=settings)
    if password is None:
        return
    print(first_admin_message(password, settings=settings), flush=True)


def _start(settings: Settings) -> None:
    _logging(str(settings.log_dir))
    try:
        engine()
        _first_admin(settings.database_url)
    except SQLAlchemyError as error:
        _fail(tr("the database is not reachable ({error}); check DATABASE_URL", error=type(error).__name__))
    except AccountError as error:
        _fail(tr("MATHSIGHT_ADMIN_PASSWORD is not usable: {reason}", reason=error))


def _sidebar(user: CurrentUser) -> None:
    role = tr(page_table.ROLE_NAMES.get(user.role, user.role))
    st.sidebar.markdown(tr("Signed in as **{name}**", name=md(user.name)) + f"  \n{md(user.username)} · {role}")
    profile_section(user)
    auth.sign_out_button()


def _translated_sections(sections: dict) -> dict:
    return {tr(section): entries for section, entries in sections.items()}


def _navigation(role: str) -> StreamlitPage:
    sections = {
        section: [
            st.Page(
                spec.path,
                title=tr(spec.title),
                icon=spec.icon,
                default=spec.file == "needs_attention.py",
                visibility="visible" if visible else "hidden",
            )  # fmt: skip
            for spec, visible in entries
        ]
        for section, entries in _translated_sections(page_table.navigation(role)).items()
    }
    return st.navigation(sections)


# Streamlit draws captions in a faded text colour (#929396 on white: 3.1:1, under WCAG AA's 4.5:1, axe's
# color-contrast). #50555c gives 7.5:1 and keeps them visibly secondary.
READABLE_CAPTIONS = ("<style>[data-testid='stCaptionContainer'], [data-testid='stCaptionContainer'] p "
                     "{ color: #50555c !important; opacity: 1 !important; }</style>")  # fmt: skip


def main() -> None:
    st.set_page_config(page_title="mathsight", page_icon=":material/school:", layout="wide")
    language.apply()  # the user's language (their profile), else the browser's: before anything is drawn
    st.html(READABLE_CAPTIONS)  # style only: Streamlit adds it to the page without drawing an element
    settings = _settings()
    _start(settings)
    user = auth.sign_in(engine(), settings)
    if user is None:
        language.mark_document()
        oidc.sign_in_buttons()
        st.caption(
            tr("mathsight: early warning of maths failure, for teachers. Accounts are created by an administrator.")
        )
        auth.cookie_removal()
        st.stop()
    apply_user_language(user)
    with st.sidebar:
        language.mark_document()
    _sidebar(user)
    auth.cookie_transfer()
    _navigation(user.role).run()


main()
