"""Users (admin): who can sign in, add a teacher or admin, deactivate or reactivate, reset a password,
sign a user out everywhere; which school accounts (identity provider) get which role, and who waits."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import streamlit as st

from dashboard import auth
from dashboard.context import CurrentUser, open_page, transaction
from dashboard.tables import show_table
from dashboard.text import md
from model.accounts import oidc, sessions, users
from model.store.tables import ROLES


def _table(accounts: list[users.UserInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "username": [u.username for u in accounts],
            "name": [u.name for u in accounts],
            "role": [u.role for u in accounts],
            "active": [u.active for u in accounts],
            "created": [u.created_at.strftime("%Y-%m-%d %H:%M") for u in accounts],
            "failed sign-ins": [u.failed_logins for u in accounts],
            "locked": ["yes" if u.locked() else "" for u in accounts],
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
    first = st.text_input("Password", type="password", key=f"{key}:password",
                          help=f"At least {users.MIN_PASSWORD_LENGTH} characters.")  # fmt: skip
    second = st.text_input("Password again", type="password", key=f"{key}:again")
    return first if first == second else None


def _add(admin: CurrentUser) -> None:
    with st.form("add-user", clear_on_submit=False):
        username = st.text_input("Username", key="add:username", help="Lower case letters, digits, . _ -")
        name = st.text_input("Full name", key="add:name")
        role = st.selectbox("Role", ROLES, key="add:role")
        password = _passwords("add")
        submitted = st.form_submit_button("Add user", type="primary")
    if not submitted:
        return
    if password is None:
        st.error("The two passwords differ.", icon=":material/error:")
        return
    action = partial(users.create_user, username=username, password=password, role=role, name=name)
    _apply(action, done=f'Added {role} "{md(username.strip().lower())}".', admin=admin)


def _activation(admin: CurrentUser, accounts: list[users.UserInfo]) -> None:
    left, right = st.columns(2)
    active = [u.username for u in accounts if u.active and u.username != admin.username]
    inactive = [u.username for u in accounts if not u.active]
    with left.form("deactivate-user"):
        chosen = st.selectbox("Active user", active, key="deactivate:username")
        if st.form_submit_button("Deactivate", disabled=not active) and chosen:
            _apply(
                partial(users.deactivate, username=chosen), done=f'"{md(chosen)}" can no longer sign in.', admin=admin
            )
    with right.form("activate-user"):
        chosen = st.selectbox("Deactivated user", inactive, key="activate:username")
        if st.form_submit_button("Reactivate", disabled=not inactive) and chosen:
            _apply(partial(users.activate, username=chosen), done=f'"{md(chosen)}" can sign in again.', admin=admin)


def _reset(admin: CurrentUser, accounts: list[users.UserInfo]) -> None:
    with st.form("reset-password"):
        chosen = st.selectbox("User", [u.username for u in accounts], key="reset:username")
        password = _passwords("reset")
        submitted = st.form_submit_button("Set password")
    if not submitted or not chosen:
        return
    if password is None:
        st.error("The two passwords differ.", icon=":material/error:")
        return
    done = f'New password set for "{md(chosen)}"; their sessions have ended.'
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
        chosen = st.selectbox("User", [u.username for u in accounts], key="end-sessions:username")
        st.caption("Signs the user out everywhere (every browser, every copy of their sign-in cookie).")
        submitted = st.form_submit_button("Sign out everywhere")
    if submitted and chosen:
        done = f'"{md(chosen)}" is signed out everywhere.'
        if _apply(partial(sessions.end_all, username=chosen), done=done, admin=admin):
            _keep_own_session(admin, chosen)


def _provider_rules(admin: CurrentUser) -> None:
    """Sign-in through the identity provider: the rules giving addresses or domains a role, and the requests."""
    with transaction() as session:
        waiting, rules = oidc.requests(session), oidc.list_rules(session)
    if waiting:
        lines = [f"- {md(r.email or '(no e-mail given)')}" + (f" ({md(r.name)})" if r.name else "")
                 + f", last tried {r.last_seen.strftime('%Y-%m-%d %H:%M')} UTC" for r in waiting]  # fmt: skip
        st.markdown("**Waiting for a role** (they signed in with their school account; no rule matches them):\n"
                    + "\n".join(lines))  # fmt: skip
    with st.form("oidc-rule"):
        pattern = st.text_input("E-mail address or domain", key="oidc:pattern",
                                help="ana@school.pt for one person, @school.pt for the whole school.")  # fmt: skip
        role = st.selectbox("Role", ROLES, key="oidc:role")
        if st.form_submit_button("Give this role", type="primary"):
            _apply(partial(oidc.add_rule, pattern=pattern, role=role),
                   done=f"School accounts matching \"{md(pattern.strip().lower())}\" sign in as {role}.",
                   admin=admin)  # fmt: skip
            with transaction() as session:
                rules = oidc.list_rules(session)
    if rules:
        show_table(pd.DataFrame({"e-mail or domain": [r.pattern for r in rules], "role": [r.role for r in rules],
                                 "set by": [r.created_by for r in rules]}), hide_index=True)  # fmt: skip
        with st.form("oidc-rule-remove"):
            chosen = st.selectbox("Rule", [r.pattern for r in rules], key="oidc:remove")
            if st.form_submit_button("Remove rule") and chosen:
                _apply(partial(oidc.remove_rule, pattern=chosen), admin=admin,
                       done=f'"{md(chosen)}" no longer gives a role (their next sign-in waits).')  # fmt: skip


def main() -> None:
    admin = open_page(__file__)
    with transaction() as session:
        accounts, waiting = users.list_users(session), oidc.requests(session)
    if waiting:
        st.warning(f"{len(waiting)} school account(s) wait for a role: see the School accounts tab.",
                   icon=":material/hourglass_top:")  # fmt: skip
    add, activation, reset, ending, provider = st.tabs(["Add a user", "Deactivate or reactivate", "Reset a password",
                                                        "Sign out everywhere", "School accounts"])  # fmt: skip
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
    st.subheader(f"{len(accounts)} accounts")
    show_table(_table(accounts), hide_index=True)


main()
