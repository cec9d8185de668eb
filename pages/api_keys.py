"""API keys (admin): create a key for a user (shown once), see every key, revoke one. All audited."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard.context import CurrentUser, open_page, settings, transaction
from dashboard.tables import show_table
from dashboard.text import md
from model import i18n
from model.accounts import apikeys, users
from model.i18n import N_, tr, tr_n
from model.store.tables import SCOPES

SCOPE_HELP = N_("predict: the prediction endpoints, models and schema. admin: also /metrics.")
# The table's column headers by column name (the data keeps the English column names).
HEADERS = {
    "prefix": N_("prefix"),
    "user": N_("user"),
    "scope": N_("scope"),
    "created": N_("created"),
    "last used": N_("last used"),  # not shown to users (a column name; its header is translated)
    "status": N_("status"),
}


def _stamp(moment: datetime | None) -> str:
    return i18n.moment(moment)


def _table(keys: list[apikeys.ApiKeyInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prefix": [k.prefix for k in keys],
            "user": [k.username for k in keys],
            "scope": [k.scope for k in keys],
            "created": [_stamp(k.created_at) for k in keys],
            "last used": [_stamp(k.last_used_at) or tr("never") for k in keys],
            "status": [tr("active") if k.active else tr("revoked {when}", when=_stamp(k.revoked_at)) for k in keys],
        }
    )


def _create(admin: CurrentUser) -> None:
    with transaction() as session:
        accounts = {u.username: u.id for u in users.list_users(session) if u.active}
    with st.form("create-key"):
        username = st.selectbox(tr("User"), list(accounts), key="create:user", help=tr("The key acts as this user."))
        scope = st.radio(tr("Scope"), SCOPES, key="create:scope", horizontal=True, help=tr(SCOPE_HELP))
        submitted = st.form_submit_button(tr("Create key"), type="primary")
    if not submitted or username is None:
        return
    try:
        with transaction() as session:
            plaintext, info = apikeys.create_key(session, accounts[username], scope, actor=admin.username,
                                                 actor_id=admin.id, settings=settings())  # fmt: skip
    except apikeys.ApiKeyError as error:
        st.error(str(error), icon=":material/error:")
        return
    st.success(tr('Created {scope} key {prefix} for "{user}".', scope=info.scope, prefix=info.prefix,
                  user=md(info.username)), icon=":material/check_circle:")  # fmt: skip
    st.warning(tr("Copy the key now: it is shown only this once and cannot be recovered."), icon=":material/key:")
    st.code(plaintext, language=None)


def _revoke(admin: CurrentUser, keys: list[apikeys.ApiKeyInfo]) -> None:
    active = {f"{k.prefix} ({k.username}, {k.scope})": k.prefix for k in keys if k.active}
    with st.form("revoke-key"):
        chosen = st.selectbox(tr("Active key"), list(active), key="revoke:key")
        submitted = st.form_submit_button(tr("Revoke"), disabled=not active)
    if submitted and chosen:
        with transaction() as session:
            info = apikeys.revoke_key(session, active[chosen], actor=admin.username, actor_id=admin.id)
        st.success(tr("Revoked key {prefix}: it no longer works.", prefix=info.prefix), icon=":material/check_circle:")


def main() -> None:
    admin = open_page(__file__)
    st.caption(tr("Keys let other systems call the REST API (header X-API-Key). Only a hash of each key is kept."))
    create, revoke = st.tabs([tr("Create a key"), tr("Revoke a key")])
    with create:
        _create(admin)
    with revoke:
        with transaction() as session:
            active = apikeys.list_keys(session, include_revoked=False)
        _revoke(admin, active)
    with transaction() as session:
        keys = apikeys.list_keys(session)
    st.header(tr_n("{count} active key", "{count} active keys", sum(k.active for k in keys)))
    show_table(_table(keys), hide_index=True, column_config={name: tr(label) for name, label in HEADERS.items()})


main()
