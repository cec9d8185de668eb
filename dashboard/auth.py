"""Sign-in glue: streamlit-authenticator on top of the users table.

The login widget checks bcrypt hashes built from ``model.accounts.users.login_accounts`` on every run, so a
deactivated or locked user is refused at once (also when they come back with a valid cookie) and a
role change applies on the next click. Sign-ins, failures and sign-outs go to the audit log.

Each browser session also holds its sign-in token's id and session generation (``SESSION_KEY``),
checked against the database on every run (:mod:`model.accounts.sessions`): a sign-out (here or in
another tab), a password change, a deactivation or "sign out everywhere" ends it on its next run, on
whichever replica it runs.
"""

from __future__ import annotations

import html
import math
import time
from types import SimpleNamespace
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth
from sqlalchemy.engine import Engine
from streamlit_authenticator.models import cookie_model
from streamlit_authenticator.utilities import LoginError

from dashboard import context, oidc, session_cookie
from dashboard.context import USER_KEY, CurrentUser, current_user
from dashboard.text import md
from model.accounts import clients, sessions, users
from model.i18n import N_, tr
from model.settings import Settings
from model.store.audit import audit
from model.store.db import session_scope


class _ServerSetCookie:
    """Stands in for the login widget's browser-side cookie manager (a component that reads and writes
    cookies from page scripts and reruns the app when it reports): mathsight's sign-in cookie is set
    and cleared by the server (:mod:`dashboard.session_cookie`) and the widget reads it from the
    request headers, so nothing needs to run in the browser."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def get(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def set(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def delete(self, *_args: Any, **_kwargs: Any) -> None:
        pass


cookie_model.stx = SimpleNamespace(CookieManager=_ServerSetCookie)  # streamlit-authenticator 0.4.2's only use


def _read_cookie(widget: cookie_model.CookieModel) -> dict | bool:
    """The widget's cookie decoding, strict: 0.4.2's own lets ``InvalidAlgorithmError`` (a token with
    ``alg: none`` or ``HS512``) and odd claims escape as a traceback; here any forged or malformed
    cookie reads as none (False, as the widget expects), so the sign-in form just shows."""
    claims = session_cookie.read_token(widget.token, widget.cookie_key)
    return False if claims is None else claims


cookie_model.CookieModel._token_decode = _read_cookie  # type: ignore[method-assign]

LOGOUT_REQUEST = "mathsight_logout_requested"
END_ALL_REQUEST = "mathsight_end_all_requested"
SESSION_KEY = oidc.SESSION_KEY  # {"jti", "gen", "exp"}: this browser session's sign-in token
COOKIE_HANDOFF = oidc.COOKIE_HANDOFF  # (one-time code, issued at): the browser fetches its cookie
COOKIE_CLEAR = "mathsight_cookie_clear"  # the browser must drop its sign-in cookie
# The session keys streamlit-authenticator keeps; everything else is cleared when a user signs out.
AUTH_KEYS = ("name", "authentication_status", "username", "email", "roles", "logout")
LOGIN_FIELDS = {  # the widget's field names (keys), each with the label it shows
    "Form name": N_("Sign in to mathsight"),  # not shown to users: the key
    "Username": N_("Username"),
    "Password": N_("Password"),
    "Login": N_("Sign in"),
}
# One message for every failed attempt (unknown user, wrong password, locked or deactivated account),
# so the form never tells which usernames exist or what became of an account.
FAILED = N_("Wrong username or password. After {attempts} failed attempts in a row an account is locked for "
            "{minutes} minutes.")  # fmt: skip
# Why a signed-in user is turned away: only after the right password of a deactivated account, or for a
# browser session (or cookie) whose account was locked or deactivated since.
REFUSED = {
    "locked": N_("Too many failed attempts: this account is locked for up to {minutes} minutes."),
    "inactive": N_("This account is deactivated; ask an administrator."),
    "ended": N_(
        "Your session has ended (signed out, signed out everywhere, or the password was changed): sign in again."
    ),  # fmt: skip
}
THROTTLED = N_("Too many failed sign-in attempts from this computer: wait {seconds} seconds before trying again.")


def failed_message() -> str:
    """What every failed sign-in attempt says, in the session's language."""
    return tr(FAILED, attempts=users.MAX_FAILED_LOGINS, minutes=users.LOCK_MINUTES)


def refused_message(reason: str) -> str:
    """Why a signed-in user is turned away (``locked``, ``inactive``, ``ended``), in the session's language."""
    return tr(REFUSED[reason], minutes=users.LOCK_MINUTES) if reason == "locked" else tr(REFUSED[reason])


def throttled_message(seconds: int) -> str:
    return tr(THROTTLED, seconds=seconds)


def _credentials(accounts: list[tuple[users.UserInfo, str]]) -> dict[str, Any]:
    return {
        "usernames": {
            info.username: {
                "name": info.name,
                "email": info.email,
                "password": password_hash,
                "roles": [info.role],
                "failed_login_attempts": 0,
            }  # fmt: skip
            for info, password_hash in accounts
        }
    }


def _failed_username(credentials: dict[str, Any]) -> str | None:
    """The known username whose password the widget just refused (None for an unknown name)."""
    failed = [name for name, entry in credentials["usernames"].items() if entry.get("failed_login_attempts")]
    return failed[0] if failed else None


def _end_session(authenticator: stauth.Authenticate) -> None:
    """Sign the browser session out (widget state and cookie) and drop every page's state."""
    if st.session_state.get("authentication_status"):
        authenticator.logout(location="unrendered")
    else:
        st.session_state["logout"] = True
    for key in list(st.session_state.keys()):
        if key not in AUTH_KEYS:
            del st.session_state[key]
    st.session_state[COOKIE_CLEAR] = True


def _hidden_request(path: str) -> None:
    """Have the browser load ``path`` of this server once (a hidden image): how the page reaches the
    cookie routes, whose answers set or clear the ``HttpOnly`` cookie that page scripts cannot touch."""
    st.html(f'<img src="{html.escape(path)}" alt="" width="1" height="1" style="position:absolute;opacity:0">')


def cookie_transfer() -> None:
    """While a fresh sign-in's code is valid, the hidden request that turns it into the sign-in cookie
    (redrawn unchanged on later runs, so the browser loads it once)."""
    handoff = st.session_state.get(COOKIE_HANDOFF)
    if handoff is None:
        return
    code, issued = handoff
    if time.time() - issued > session_cookie.CODE_SECONDS:
        del st.session_state[COOKIE_HANDOFF]
        return
    with st.sidebar:
        _hidden_request(f"{_route(session_cookie.SESSION_PATH)}?code={code}")


def cookie_removal() -> None:
    """After a sign-out, the hidden request that deletes the browser's sign-in cookie."""
    if st.session_state.get(COOKIE_CLEAR):
        _hidden_request(_route(session_cookie.SIGNOUT_PATH))


def _route(path: str) -> str:
    return session_cookie.url_path(path, str(st.get_option("server.baseUrlPath") or ""))


def _login_form(authenticator: stauth.Authenticate, by_password: list[str]) -> bool | None:
    """Run the widget (cookie check, then the form if needed); returns its authentication status."""
    try:
        authenticator.login(location="main", fields={k: tr(v) for k, v in LOGIN_FIELDS.items()}, key="mathsight-login",
                            callback=lambda event: by_password.append(event["username"]))  # fmt: skip
    except LoginError as error:  # a cookie naming a user who no longer exists
        st.error(tr("Sign-in refused: {reason}", reason=md(error)))
        _end_session(authenticator)
        return None
    return st.session_state.get("authentication_status")


LOCALHOST = "127.0.0.1"


def client_address(settings: Settings) -> str:
    """The address the browser connects from: the peer, or the ``X-Forwarded-For`` client when the peer
    is a trusted proxy (``MATHSIGHT_TRUSTED_PROXIES``; see ``model.accounts.clients``).

    Streamlit gives no address for a peer on localhost (a proxy on the same machine, tests): that
    peer counts as 127.0.0.1, and stays ``users.UNKNOWN_CLIENT`` unless it is a trusted proxy.
    """
    address = st.context.ip_address
    peer = address if isinstance(address, str) and address else None
    forwarded = st.context.headers.get(clients.FORWARDED_FOR)
    client = clients.client_address(peer or LOCALHOST, forwarded, settings.trusted_networks)
    return users.UNKNOWN_CLIENT if not client or (peer is None and client == LOCALHOST) else client


def sign_in(engine: Engine, settings: Settings) -> CurrentUser | None:
    """Show the login form until someone signs in; returns the signed-in user, or None.

    Also carries out a sign-out requested by :func:`sign_out_button` (before anything is drawn).
    While the client must wait after repeated failures (``users.CLIENT_THROTTLE``) no password can
    match; a valid sign-in cookie still works.
    """
    if oidc.signed_in():  # came back from the school's identity provider: its own path (dashboard.oidc)
        return oidc.sign_in(engine, sign_out=st.session_state.pop(LOGOUT_REQUEST, False),
                            end_all=st.session_state.pop(END_ALL_REQUEST, False))  # fmt: skip
    client = client_address(settings)
    waiting = users.CLIENT_THROTTLE.wait_seconds(client) > 0
    with session_scope(engine) as session:
        accounts = users.login_accounts(session, bar_all=waiting)
    credentials = _credentials(accounts)
    authenticator = stauth.Authenticate(
        credentials,
        settings.cookie_name,
        settings.local_secret("cookie_key"),
        0,  # the widget must not write the cookie from the browser: the server does (session_cookie)
        auto_hash=False,
        login_sleep_time=0,  # the cookie is read from the request headers; no need to wait for it
    )
    if st.session_state.pop(LOGOUT_REQUEST, False):
        _sign_out(engine, authenticator)
    by_password: list[str] = []
    status = _login_form(authenticator, by_password)
    if status is False:
        _refuse(engine, _failed_username(credentials), client, waiting)
        return None
    if not status:
        return None
    if by_password:  # a new session: its own token id, under the user's current generation
        info = next((info for info, _ in accounts if info.username == st.session_state.get("username")), None)
        st.session_state[SESSION_KEY] = {"jti": sessions.new_token_id(), "exp": session_cookie.expiry(settings),
                                         "gen": info.session_generation if info else -1}  # fmt: skip
    elif SESSION_KEY not in st.session_state:  # signed in by the cookie this browser sent
        claims = session_cookie.read_token(st.context.cookies.get(settings.cookie_name), settings.local_secret(
            "cookie_key"))  # fmt: skip
        if claims is not None:
            st.session_state[SESSION_KEY] = {"jti": claims["jti"], "gen": claims["gen"], "exp": claims["exp_date"]}
    user = _signed_in(engine, accounts, method="password" if by_password else "cookie")
    if user is not None and st.session_state.pop(END_ALL_REQUEST, False):
        _end_all(engine, user)
    if user is None:  # signed in by cookie, but barred or signed out since: end it and show the form
        _end_session(authenticator)
        _login_form(authenticator, by_password)
    elif by_password:
        st.session_state.pop(COOKIE_CLEAR, None)
        _hand_off(user, settings)
    return user


def _hand_off(user: CurrentUser, settings: Settings) -> None:
    """Have the browser fetch the sign-in cookie of this browser session's token."""
    oidc.hand_off(user.username, settings)


def _end_all(engine: Engine, user: CurrentUser) -> None:
    """ "Sign out everywhere": every other session of the user ends; this one goes on under the new
    generation (the browser gets a fresh cookie)."""
    with session_scope(engine) as session:
        generation = sessions.end_all(session, user.username, actor=user.username, actor_id=user.id)
    st.session_state[SESSION_KEY] = {**st.session_state[SESSION_KEY], "gen": generation}
    _hand_off(user, context.settings())
    st.toast(tr("Signed out everywhere else."), icon=":material/logout:")


def _refuse(engine: Engine, username: str | None, client: str, waiting: bool) -> None:
    """Count a failed attempt per user (unless refused unchecked) and per client, audit it, say why."""
    if not waiting:
        if username is None:  # the widget checked no hash: take as long as a check would
            users.spend_a_password_check()
        with session_scope(engine) as session:
            users.record_login(session, username, ok=False)
    wait = users.CLIENT_THROTTLE.failed(client)  # its own transaction (the database throttle writes)
    if waiting:
        with session_scope(engine) as session:
            users.record_throttled(session, client, wait)
    st.error(throttled_message(math.ceil(wait)) if wait > 0 else failed_message())
    # Reset the widget's flag so a later rerun does not count this failure again.
    st.session_state["authentication_status"] = None


def _signed_in(engine: Engine, accounts: list[tuple[users.UserInfo, str]], method: str) -> CurrentUser | None:
    """The CurrentUser of the signed-in username, refreshed from the database on every run."""
    username = st.session_state.get("username")
    info = next((info for info, _ in accounts if info.username == username), None)
    if info is None or not info.active or info.locked():
        st.error(refused_message("inactive" if info is None or not info.active else "locked"))
        if info is not None and method == "password":  # the right password of a deactivated account
            with session_scope(engine) as session:
                users.record_login(session, info.username, ok=False)
        return None
    if not _session_open(engine, info):
        st.error(refused_message("ended"))
        return None
    user = CurrentUser(id=info.id, username=info.username, name=info.name, role=info.role)
    previous = current_user()
    if previous is None or previous.id != user.id:
        with session_scope(engine) as session:
            users.record_login(session, user.username, ok=True, method=method)
    st.session_state[USER_KEY] = user
    return user


def _session_open(engine: Engine, info: users.UserInfo) -> bool:
    """Whether this browser session's token is still good: issued under the user's current generation
    and not signed out (checked in the database on every run, so every replica agrees)."""
    token = st.session_state.get(SESSION_KEY)
    if not isinstance(token, dict):
        return False
    with session_scope(engine) as session:
        return sessions.is_valid(session, info.username, token.get("jti"), token.get("gen"), token.get("exp"))


def _sign_out(engine: Engine, authenticator: stauth.Authenticate) -> None:
    """Sign out: this browser session's token is revoked in the database (a copy of the cookie no longer
    signs in, on any replica), then the session ends."""
    user = current_user()
    token = st.session_state.get(SESSION_KEY)
    with session_scope(engine) as session:
        if isinstance(token, dict):
            sessions.revoke(session, token["jti"], float(token["exp"]))
        if user is not None:
            audit(session, "logout", user.username, user.id)
    _end_session(authenticator)


def _request_sign_out() -> None:
    st.session_state[LOGOUT_REQUEST] = True


def _request_end_all() -> None:
    st.session_state[END_ALL_REQUEST] = True


def sign_out_button() -> None:
    """The sidebar's "Log out" button, and "Sign out everywhere else"; the next run (right after the
    click) carries it out."""
    st.sidebar.button(tr("Log out"), key="mathsight-logout", icon=":material/logout:", on_click=_request_sign_out)
    st.sidebar.button(tr("Sign out everywhere else"), key="mathsight-end-all", icon=":material/devices:",
                      on_click=_request_end_all, help=tr("Ends every other session of your account (other browsers, "
                      "copies of your sign-in cookie); this one stays signed in."))  # fmt: skip


def keep_this_session(generation: int) -> None:
    """After the signed-in user's own password change (which ends all their sessions), carry this
    browser session on under the new ``generation`` with a fresh cookie."""
    user = current_user()
    token = st.session_state.get(SESSION_KEY)
    if user is None or not isinstance(token, dict):
        return
    st.session_state[SESSION_KEY] = {**token, "gen": generation}
    if st.session_state.get(oidc.PROVIDER_KEY):  # a provider sign-in: no cookie of ours to renew
        oidc.carry_on(context.engine(), token["jti"], generation)
        return
    _hand_off(user, context.settings())
    cookie_transfer()  # now, not on the next run: a reload before it would find only the old cookie
