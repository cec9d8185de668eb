"""The language of the sign-in page, the navigation and the sidebar, and each user's own choice (AppTest).

A user's language is kept on their account: chosen in "My profile", it switches the page at once, and
the next sign-in (another browser) opens in it. Without a choice the browser's language counts.
"""

from __future__ import annotations

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.language import LANGUAGE_KEY
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.tables import User
from tests.dashboard.conftest import Account, app_test, log_in, page_test
from tests.translations import english_left


def _language(url: str, username: str) -> str | None:
    with session_scope(get_engine(url)) as session:
        return session.execute(sa.select(User.language).where(User.username == username)).scalar_one()


def _sidebar_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button]


def test_the_sign_in_page_speaks_portuguese(app_db_url: str, admin_account: Account) -> None:
    at = app_test()
    at.session_state[LANGUAGE_KEY] = "pt_PT"  # what a Portuguese browser (or an earlier choice) leaves
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Nome de utilizador", "Palavra-passe"]
    assert [b.label for b in at.button] == ["Entrar"]
    assert english_left(at) == []
    at = log_in(at, "head", "not-the-password")
    assert [e.value for e in at.error] == [
        "Nome de utilizador ou palavra-passe errados. Após 5 tentativas falhadas seguidas, a conta fica "
        "bloqueada durante 15 minutos."
    ]


def test_a_teacher_chooses_portuguese_and_the_next_sign_in_opens_in_it(
    app_db_url: str, teacher_account: Account
) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    assert not at.exception
    assert "Log out" in _sidebar_buttons(at)
    choice = next(s for s in at.selectbox if s.label == "Language")
    assert choice.value == "browser"  # no choice yet: the browser's language
    choice.select("pt_PT")
    next(b for b in at.button if b.label == "Save profile").click()
    at.run()
    assert not at.exception
    assert _language(app_db_url, "tina") == "pt_PT"
    assert "Sair" in _sidebar_buttons(at) and "Log out" not in _sidebar_buttons(at)
    assert any("Sessão iniciada como" in m.value for m in at.sidebar.markdown)
    with session_scope(get_engine(app_db_url)) as session:
        [entry] = list_audit(session, "language_set")
    assert entry.detail == {"language": "pt_PT"}

    again = log_in(app_test().run(), "tina", teacher_account.password)  # another browser, English by default
    assert not again.exception
    assert "Sair" in _sidebar_buttons(again)
    assert next(s for s in again.selectbox if s.label == "Língua").value == "pt_PT"

    back = next(s for s in again.selectbox if s.label == "Língua")
    back.select_index(0)  # "my browser's language"
    next(b for b in again.button if b.label == "Guardar perfil").click()
    again.run()
    assert _language(app_db_url, "tina") is None
    assert "Log out" in _sidebar_buttons(again)


def test_a_refusal_and_the_page_title_in_portuguese(app_db_url: str, teacher_account: Account) -> None:
    at = page_test("users.py", teacher_account.user, language="pt_PT").run()
    assert [e.value for e in at.error] == [
        "Acesso recusado: esta página é para contas de administrador; a sua sessão é de professor."
    ]
    at = page_test("users.py", None, language="pt_PT").run()
    assert [e.value for e in at.error] == ["Entre para ver esta página."]
