"""Downloads that need the session that made them.

``st.download_button`` serves its file from ``/media/<hash>``: content-addressed (two identical
outputs share the address) and answered to any client, signed in or not. mathsight's downloads
instead go through :func:`download_link`: the file is kept in this process (never in the database:
a class's predictions name students), under a random id bound to the user and the sign-in token
(``jti``) of the browser session that made it, for at most ``EXPIRY_SECONDS``; the page shows a
link to ``downloads/<id>``, a route of the dashboard's ASGI app (``dashboard/server.py``) that
answers only a request whose sign-in cookie is open in the database (:func:`session_cookie.open_session`)
and carries that very token: 401 without a valid session (no cookie, signed out, ended), 403 for
another session, an unknown or an expired id.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import streamlit as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboard import session_cookie
from model.i18n import tr
from model.settings import get_settings

DOWNLOAD_PATH = "downloads"
EXPIRY_SECONDS = 60 * 60
MAX_PER_SESSION = 32  # the oldest files of a session are dropped beyond this
_LINKS_KEY = "mathsight_download_links"  # this browser session's files by name, so reruns keep the link


@dataclass(frozen=True)
class _File:
    data: bytes
    file_name: str
    mime: str
    username: str
    jti: str
    expires: float


class DownloadStore:
    """The files offered for download in this process, by random id."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._files: dict[str, _File] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def add(self, data: bytes, file_name: str, mime: str, *, username: str, jti: str,
            seconds: float = EXPIRY_SECONDS) -> str:  # fmt: skip
        """Keep ``data`` for the session ``jti`` of ``username``; returns its new random id."""
        file_id = secrets.token_urlsafe(24)
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            mine = [key for key, kept in self._files.items() if kept.jti == jti]
            for key in mine[: max(0, len(mine) - MAX_PER_SESSION + 1)]:
                del self._files[key]
            self._files[file_id] = _File(bytes(data), file_name, mime, username, jti, now + seconds)
        return file_id

    def has(self, file_id: str) -> bool:
        with self._lock:
            kept = self._files.get(file_id)
            return kept is not None and kept.expires > self._clock()

    def discard(self, file_id: str) -> None:
        with self._lock:
            self._files.pop(file_id, None)

    def get(self, file_id: str, username: str, jti: str) -> _File | None:
        """The file ``file_id`` if it was made by the session ``jti`` of ``username`` and has not expired."""
        with self._lock:
            kept = self._files.get(file_id)
        if kept is None or kept.expires <= self._clock():
            return None
        if not (secrets.compare_digest(kept.jti, jti) and kept.username == username):
            return None
        return kept

    def _drop_expired(self, now: float) -> None:
        for key in [key for key, kept in self._files.items() if kept.expires <= now]:
            del self._files[key]


FILES = DownloadStore()


def _attachment(file_name: str) -> str:
    ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in file_name) or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"


def serve(request: Request) -> Response:
    """``GET downloads/<id>``: the file, to the session that made it only."""
    no_store = {"Cache-Control": "no-store"}
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return Response(status_code=403, headers=no_store)
    settings = get_settings()
    claims = session_cookie.open_session(request.cookies.get(settings.cookie_name), settings)
    if claims is None:
        return Response(status_code=401, headers=no_store)
    kept = FILES.get(request.path_params["file_id"], claims["username"], claims["jti"])
    if kept is None:
        return Response(status_code=403, headers=no_store)
    headers = {**no_store, "Content-Disposition": _attachment(kept.file_name), "X-Content-Type-Options": "nosniff"}
    return Response(kept.data, media_type=kept.mime, headers=headers)


def routes(base: str = "") -> list[Route]:
    """The download route, for ``st.App(routes=...)``, under the app's base URL path."""
    return [Route(session_cookie.url_path(DOWNLOAD_PATH + "/{file_id}", base), serve, methods=["GET"])]


def download_link(label: str, data: bytes | str, file_name: str, mime: str, *, primary: bool = False) -> None:
    """In place of ``st.download_button``: a link to ``data`` that only this browser session can follow."""
    from dashboard.auth import SESSION_KEY
    from dashboard.context import current_user

    user, token = current_user(), st.session_state.get(SESSION_KEY)
    if user is None or not isinstance(token, dict):
        st.caption(tr("{label}: sign in again to download.", label=label))
        return
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    links = st.session_state.setdefault(_LINKS_KEY, {})  # file name -> (digest, id): one file per name
    digest = hashlib.sha256(payload).hexdigest()
    known_digest, file_id = links.get(file_name, (None, None))
    if known_digest != digest or file_id is None or not FILES.has(file_id):
        if file_id is not None:
            FILES.discard(file_id)  # a new class replaces the old one's file: memory stays bounded
        file_id = FILES.add(payload, file_name, mime, username=user.username, jti=token["jti"])
        links[file_name] = (digest, file_id)
    base = str(st.get_option("server.baseUrlPath") or "")
    href = session_cookie.url_path(f"{DOWNLOAD_PATH}/{file_id}", base)
    colours = "background:#ff4b4b;color:#fff;border:1px solid #ff4b4b" if primary else (
        "background:transparent;color:inherit;border:1px solid rgba(49,51,63,0.3)")  # fmt: skip
    st.html(
        f'<a href="{html.escape(href)}" download="{html.escape(file_name)}" role="button" '
        f'style="display:inline-block;padding:0.35rem 0.75rem;border-radius:0.5rem;text-decoration:none;{colours}">'
        f"{html.escape(label)}</a>"
    )
