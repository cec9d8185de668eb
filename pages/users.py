"""Users (admin): who can sign in, add a teacher or admin, deactivate or reactivate, reset a password,
sign a user out everywhere; which school accounts (identity provider) get which role, and who waits."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import streamlit as st

from dashboard import auth
from dashboard.context import CurrentUser, open_page, transaction
from dashboard.page_table import ROLE_NAMES
from dashboard.tables import show_table
from dashboard.text import md
from model import i18n
from model.accounts import oidc, sessions, users
from model.i18n import N_, tr, tr_n
from model.store.tables import ROLES

# Each table's column headers by column name (the data keeps the English column names).
HEADERS = {
    "username": N_("username"),
    "name": N_("name"),
    "role": N_("role"),
    "active": N_("active"),
    "created": N_("created"),
    "failed sign-ins": N_("failed sign-ins"),  # not shown to users (a column name; its header is translated)
    "locked": N_("locked"),
}
RULE_HEADERS = {
    "e-mail or domain": N_("e-mail or domain"),  # not shown to users (a column name; its header is translated)
    "role": N_("role"),
    "set by": N_("set by"),  # not shown to users (a column name; its header is translated)
}


def role_label(role: str) -> str:
    return tr(ROLE_NAMES[role]) if role in ROLE_NAMES else role


def _headers(names: dict[str, str]) -> dict[str, str]:
    """A table's column headers in this language (the data keeps its column names)."""
    return {column: tr(label) for column, label in names.items()}


def _table(accounts: list[users.UserInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "username": [u.username for u in accounts],
            "name": [u.name for u in accounts],
            "role": [role_label(u.role) for u in accounts],
            "active": [u.active for u in accounts],
            "created": [i18n.moment(u.created_at) for u in accounts],
            "failed sign-ins": [u.failed_logins for u in accounts],
            "locked": [tr("yes") if u.locked() else "" for u in accounts],
        }
    )


def _apply(action: Callable[..., object], done: str, admin: CurrentUser) -> bool:
    """Run a ``model.accounts.users`` change in its own transaction (session first, actor added here);
    show success or the refusal."""
    try:
        with transaction() as session:
            action(session, actor=admin.username, actor_id=admin.id)
    except users.AccountError as error:
        st.error(md(error), icon=":material/error:")
        return False
    st.success(done, icon=":material/check_circle:")
    return True


def _passwords(key: str) -> str | None:
    """Two password boxes; the password when both agree, else None (with an error once submitted)."""
    first = st.text_input(tr("Password"), type="password", key=f"{key}:password",
                          help=tr("At least {count} characters.", count=users.MIN_PASSWORD_LENGTH))  # fmt: skip
    second = st.text_input(tr("Password again"), type="password", key=f"{key}:again")
    return first if first == second else None


def _add(admin: CurrentUser) -> None:
    with st.form("add-user", clear_on_submit=False):
        username = st.text_input(tr("Username"), key="add:username", help=tr("Lower case letters, digits, . _ -"))
        name = st.text_input(tr("Full name"), key="add:name")
        role = st.selectbox(tr("Role"), ROLES, key="add:role", format_func=role_label)
        password = _passwords("add")
        submitted = st.form_submit_button(tr("Add user"), type="primary")
    if not submitted:
        return
    if password is None:
        st.error(tr("The two passwords differ."), icon=":material/error:")
        return
    action = partial(users.create_user, username=username, password=password, role=role, name=name)
    done = tr('Added {role} "{username}".', role=role_label(role), username=md(username.strip().lower()))
    _apply(action, done=done, admin=admin)


def _activation(admin: CurrentUser, accounts: list[users.UserInfo]) -> None:
    left, right = st.columns(2)
    active = [u.username for u in accounts if u.active and u.username != admin.username]
    inactive = [u.username for u in accounts if not u.active]
    with left.form("deactivate-user"):
        chosen = st.selectbox(tr("Active user"), active, key="deactivate:username")
        if st.form_submit_button(tr("Deactivate"), disabled=not active) and chosen:
            done = tr('"{username}" can no longer sign in.', username=md(chosen))
            _apply(partial(users.deactivate, username=chosen), done=done, admin=admin)
    with right.form("activate-user"):
        chosen = st.selectbox(tr("Deactivated user"), inactive, key="activate:username")
        if st.form_submit_button(tr("Reactivate"), disabled=not inactive) and chosen:
            done = tr('"{username}" can sign in again.', username=md(chosen))
            _apply(partial(users.activate, username=chosen), done=done, admin=admin)


def _reset(admin: CurrentUser, accounts: list[users.UserInfo]) -> None:
    with st.form("reset-password"):
        chosen = st.selectbox(tr("User"), [u.username for u in accounts], key="reset:username")
        password = _passwords("reset")
        submitted = st.form_submit_button(tr("Set password"))
    if not submitted or not chosen:
        return
    if password is None:
        st.error(tr("The two passwords differ."), icon=":material/error:")
        return
    done = tr('New password set for "{username}"; their sessions have ended.', username=md(chosen))
    if _apply(partial(users.set_password, username=chosen, password=password), done=done, admin=admin):
        _keep_own_session(admin, chosen)


def _keep_own_session(admin: CurrentUser, username: str) -> None:
    """After a change that ended ``username``'s sessions: if that is the admin themself, this session goes on."""
    if username != admin.username:
        return
    with transaction() as session:
        generation = sessions.generation(session, username)
    if generation is not None:
        auth.keep_this_session(generation)


def _end_sessions(admin: CurrentUser, accounts: list[users.UserInfo]) -> None:
    with st.form("end-sessions"):
        chosen = st.selectbox(tr("User"), [u.username for u in accounts], key="end-sessions:username")
        st.caption(tr("Signs the user out everywhere (every browser, every copy of their sign-in cookie)."))
        submitted = st.form_submit_button(tr("Sign out everywhere"))
    if submitted and chosen:
        done = tr('"{username}" is signed out everywhere.', username=md(chosen))
        if _apply(partial(sessions.end_all, username=chosen), done=done, admin=admin):
            _keep_own_session(admin, chosen)


def _provider_rules(admin: CurrentUser) -> None:
    """Sign-in through the identity provider: the rules giving addresses or domains a role, and the requests."""
    with transaction() as session:
        waiting, rules = oidc.requests(session), oidc.list_rules(session)
    if waiting:
        lines = ["- " + tr("{person}, last tried {when} UTC", person=_person(r.email, r.name),
                           when=i18n.moment(r.last_seen)) for r in waiting]  # fmt: skip
        st.markdown(tr("**Waiting for a role** (they signed in with their school account; no rule matches them):")
                    + "\n" + "\n".join(lines))  # fmt: skip
    with st.form("oidc-rule"):
        pattern = st.text_input(tr("E-mail address or domain"), key="oidc:pattern",
                                help=tr("ana@school.pt for one person, @school.pt for the whole school."))  # fmt: skip
        role = st.selectbox(tr("Role"), ROLES, key="oidc:role", format_func=role_label)
        if st.form_submit_button(tr("Give this role"), type="primary"):
            _apply(partial(oidc.add_rule, pattern=pattern, role=role),
                   done=tr('School accounts matching "{pattern}" sign in as {role}.',
                           pattern=md(pattern.strip().lower()), role=role_label(role)),
                   admin=admin)  # fmt: skip
            with transaction() as session:
                rules = oidc.list_rules(session)
    if rules:
        table = pd.DataFrame({"e-mail or domain": [r.pattern for r in rules],
                              "role": [role_label(r.role) for r in rules],
                              "set by": [r.created_by for r in rules]})  # fmt: skip
        show_table(table, hide_index=True, column_config=_headers(RULE_HEADERS))
        with st.form("oidc-rule-remove"):
            chosen = st.selectbox(tr("Rule"), [r.pattern for r in rules], key="oidc:remove")
            if st.form_submit_button(tr("Remove rule")) and chosen:
                _apply(partial(oidc.remove_rule, pattern=chosen), admin=admin,
                       done=tr('"{pattern}" no longer gives a role (their next sign-in waits).',
                               pattern=md(chosen)))  # fmt: skip


def _person(email: str | None, name: str | None) -> str:
    """A waiting school account as listed: its address (or that none was given) and its name."""
    shown = md(email) if email else tr("(no e-mail given)")
    return tr("{email} ({name})", email=shown, name=md(name)) if name else shown


def main() -> None:
    admin = open_page(__file__)
    with transaction() as session:
        accounts, waiting = users.list_users(session), oidc.requests(session)
    if waiting:
        st.warning(tr_n("{count} school account waits for a role: see the School accounts tab.",
                        "{count} school accounts wait for a role: see the School accounts tab.", len(waiting)),
                   icon=":material/hourglass_top:")  # fmt: skip
    tabs = [tr("Add a user"), tr("Deactivate or reactivate"), tr("Reset a password"), tr("Sign out everywhere"),
            tr("School accounts")]  # fmt: skip
    add, activation, reset, ending, provider = st.tabs(tabs)
    with add:
        _add(admin)
    with activation:
        _activation(admin, accounts)
    with reset:
        _reset(admin, accounts)
    with ending:
        _end_sessions(admin, accounts)
    with provider:
        _provider_rules(admin)
    with transaction() as session:
        accounts = users.list_users(session)
    st.header(tr_n("{count} account", "{count} accounts", len(accounts)))
    show_table(_table(accounts), hide_index=True, column_config=_headers(HEADERS))


main()
