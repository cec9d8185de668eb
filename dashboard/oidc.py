"""Sign-in through the school's identity provider: Streamlit's own ``st.login`` / ``st.user`` (OpenID
Connect through Authlib), configured in the ``[auth]`` table of ``.streamlit/secrets.toml``.

Streamlit runs the provider round trip (``auth/login``, ``oauth2callback``: Authlib checks the ID
token's signature against the provider's JWKS, its issuer, audience, expiry and nonce) and keeps the
person's identity in its own signed, HttpOnly cookie. From there mathsight decides
(:mod:`model.accounts.oidc`): a person whose address an admin mapped to a role becomes (or is) an
ordinary user; anyone else sees "waiting for an administrator" and nothing more. Every run checks the
user is active and the provider sign-in's session is still open (generation, sign-out), as
:mod:`dashboard.auth` does for password sessions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import NoReturn

import streamlit as st
from sqlalchemy.engine import Engine
from streamlit.auth_util import get_secrets_auth_section

from dashboard import session_cookie
from dashboard.context import USER_KEY, CurrentUser, current_user, settings
from dashboard.text import md
from model.accounts import oidc, sessions, users
from model.i18n import N_, tr
from model.settings import Settings
from model.store.audit import audit
from model.store.db import session_scope

SESSION_KEY = "mathsight_session"  # dashboard.auth's key: {"jti", "gen", "exp"} of this browser session
COOKIE_HANDOFF = "mathsight_cookie_handoff"  # (one-time code, issued at): the browser fetches its cookie
PROVIDER_KEY = "mathsight_oidc"  # set while the session's user came through the identity provider
COOKIE_SECONDS = 30 * 86_400  # Streamlit keeps its identity cookie 30 days
TURNED_AWAY = {  # shown with tr()
    "waiting": N_("Your school account is known to mathsight, but no administrator has given it a role yet. "
                  "An administrator sees your request on the Users page; sign in again once they have. Until then "
                  "mathsight shows you nothing else."),
    "inactive": N_("This account is deactivated; ask an administrator."),
    "unverified": N_("Your identity provider has not verified your e-mail address, so mathsight cannot match it "
                     "to a role. Ask your school's IT team."),
    "ended": N_("Your session has ended (signed out, signed out everywhere, or deactivated): sign in again."),
}  # fmt: skip


def providers() -> dict[str, str]:
    """The configured identity providers (the ``[auth]`` table's name for each, and the label its button
    shows: the section's ``label``, else its name); empty when sign-in through a provider is not set up."""
    section = get_secrets_auth_section()
    if not section or "redirect_uri" not in section or "cookie_secret" not in section:
        return {}
    found = {}
    if "client_id" in section:
        found["default"] = str(section.get("label") or tr("your school account"))
    for name, value in section.items():
        if isinstance(value, Mapping) and "client_id" in value and "_" not in name:
            found[name] = str(value.get("label") or name.title())
    return found


def sign_in_buttons() -> None:
    """Below the password form: one button per configured provider (none when none is configured)."""
    configured = providers()
    if not configured:
        return
    st.markdown(tr("Or sign in with your school account:"))
    for name, label in configured.items():
        if st.button(
            tr("Sign in with {provider}", provider=label),
            key=f"mathsight-oidc-{name}",
            icon=":material/account_circle:",
        ):
            st.login(name)


def signed_in() -> bool:
    """Whether this browser holds Streamlit's identity cookie (someone came back from the provider)."""
    return bool(providers()) and bool(st.user.is_logged_in)


def _nothing() -> None:
    """The only page of someone turned away: nothing."""


def _turn_away(status: str) -> NoReturn:
    """Say why the provider's person gets nothing, offer to sign out, and stop the run."""
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(PROVIDER_KEY, None)
    st.navigation([st.Page(_nothing, title="mathsight")], position="hidden")  # no links left from a session
    email = st.user.get("email")
    if status == "waiting":
        st.title(tr("Waiting for an administrator"))
        st.info(tr("Signed in as **{who}**.", who=md(email or st.user.get("sub"))) + " " + tr(TURNED_AWAY["waiting"]),
                icon=":material/hourglass_top:")  # fmt: skip
    else:
        st.error(tr(TURNED_AWAY[status]), icon=":material/block:")
    if st.button(tr("Sign out"), key="mathsight-oidc-signout", icon=":material/logout:"):
        st.logout()
    st.stop()


def _claims() -> tuple[str, str, dict]:
    claims = st.user.to_dict()
    return str(claims.get("iss") or ""), str(claims.get("sub") or ""), claims


def _first_run(engine: Engine) -> CurrentUser:
    """This browser session's first run with the provider's identity: resolve it, open its session."""
    issuer, subject, claims = _claims()
    with session_scope(engine) as session:
        resolution = oidc.resolve(session, issuer=issuer, subject=subject, email=claims.get("email"),
                                  name=claims.get("name"), email_verified=claims.get("email_verified"),
                                  trust_unsent_verification=settings().oidc_trust_unsent_email_verified)  # fmt: skip
    if resolution.status != "ok" or resolution.user is None:
        if resolution.status == "inactive" and resolution.user is not None:
            with session_scope(engine) as session:
                users.record_login(session, resolution.user.username, ok=False, method="oidc")
        _turn_away(resolution.status)
    info = resolution.user
    jti = oidc.session_id(issuer, subject, claims.get("iat"), claims.get("nonce"))
    issued = claims.get("iat")
    expires = (float(issued) if isinstance(issued, int | float) else time.time()) + COOKIE_SECONDS
    with session_scope(engine) as session:
        generation = oidc.session_generation(session, jti, info, expires)
    st.session_state[SESSION_KEY] = {"jti": jti, "gen": generation, "exp": expires}
    st.session_state[PROVIDER_KEY] = True
    hand_off(info.username, settings())  # downloads (dashboard.downloads) answer mathsight's own cookie only
    return CurrentUser(id=info.id, username=info.username, name=info.name, role=info.role)


def hand_off(username: str, config: Settings) -> None:
    """Have the browser fetch mathsight's own sign-in cookie for this browser session's token (after a
    password or a provider sign-in): the download route knows a session only by that cookie."""
    token = st.session_state[SESSION_KEY]
    code = session_cookie.handoff_code(username, config, jti=token["jti"], generation=token["gen"],
                                       expires=token["exp"])  # fmt: skip
    st.session_state[COOKIE_HANDOFF] = (code, time.time())


def sign_in(engine: Engine, *, sign_out: bool = False, end_all: bool = False) -> CurrentUser:
    """The signed-in user of a browser that came back from the provider (or a stopped run saying why not).

    ``sign_out`` and ``end_all`` carry out the sidebar's "Log out" and "Sign out everywhere else"."""
    if sign_out:
        _sign_out(engine)
    user = current_user() if st.session_state.get(PROVIDER_KEY) else None
    if user is None:
        user = _first_run(engine)
    token = st.session_state.get(SESSION_KEY) or {}
    with session_scope(engine) as session:
        info = users.get_user(session, user.username)
        valid = info is not None and sessions.is_valid(
            session, info.username, token.get("jti"), token.get("gen"), token.get("exp")
        )
        if valid and current_user() is None:
            users.record_login(session, user.username, ok=True, method="oidc")
    if info is None or not info.active:
        _turn_away("inactive")
    if not valid or info is None:
        _turn_away("ended")
    user = CurrentUser(id=info.id, username=info.username, name=info.name, role=info.role)
    st.session_state[USER_KEY] = user
    if end_all:
        _end_all(engine, user)
    return user


def _end_all(engine: Engine, user: CurrentUser) -> None:
    """ "Sign out everywhere": the user's other sessions end; this provider sign-in goes on."""
    token = st.session_state[SESSION_KEY]
    with session_scope(engine) as session:
        generation = sessions.end_all(session, user.username, actor=user.username, actor_id=user.id)
        oidc.carry_on(session, token["jti"], generation)
    st.session_state[SESSION_KEY] = {**token, "gen": generation}
    st.toast(tr("Signed out everywhere else."), icon=":material/logout:")


def _sign_out(engine: Engine) -> None:
    """Sign out: this provider sign-in is revoked in the database (a copy of the identity cookie no
    longer signs in), the page state goes, and Streamlit drops its cookie (and asks the provider to end
    its session when it can)."""
    user = current_user()
    token = st.session_state.get(SESSION_KEY)
    with session_scope(engine) as session:
        if isinstance(token, dict):
            sessions.revoke(session, token["jti"], float(token["exp"]))
        if user is not None:
            audit(session, "logout", user.username, user.id, method="oidc")
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.logout()
    st.stop()


def carry_on(engine: Engine, jti: str, generation: int) -> None:
    """After the user's own "sign out everywhere" from the Users page: this provider sign-in goes on."""
    with session_scope(engine) as session:
        oidc.carry_on(session, jti, generation)
