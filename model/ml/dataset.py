"""Obtaining and reading the UCI Student Performance maths file (``student-mat.csv``).

The file is looked up, first hit wins, in: an explicit path, ``settings.data`` (``MATHSIGHT_DATA``),
``settings.shared_data_dir``, the cache ``settings.raw_dir``, and finally downloaded from the UCI
archive into that cache. Whatever the source, its SHA-256 must equal :data:`CSV_SHA256`. Without an
explicit path the caller passes the ``Settings`` to look in.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd

from model.errors import UserError
from model.settings import Settings

CSV_NAME = "student-mat.csv"
CSV_SHA256 = "e47f9ee225e1ee6e69b7564e6dac7123e80b8486677fe111f351964cef5dec80"
UCI_URL = "https://archive.ics.uci.edu/static/public/320/student+performance.zip"
DOWNLOAD_TIMEOUT = 30.0
MAX_DOWNLOAD_BYTES = 20_000_000
MAX_ZIP_DEPTH = 2


class DatasetError(UserError):
    """The data set could not be obtained."""


class DatasetChecksumError(DatasetError):
    """A candidate ``student-mat.csv`` is not byte-for-byte the published file."""

    def __init__(self, source: str, got: str, expected: str = CSV_SHA256) -> None:
        self.source, self.got, self.expected = source, got, expected
        super().__init__(
            f"{CSV_NAME} from {source} has the wrong SHA-256: expected {expected}, got {got}. "
            "Use the unmodified file from the UCI archive (data set 320)."
        )


class DatasetDownloadError(DatasetError):
    """The download failed or did not contain ``student-mat.csv``."""


def dataset_sha256(path: Path | str) -> str:
    """Hex SHA-256 of the file at ``path``."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _verified(path: Path, source: str) -> Path:
    got = dataset_sha256(path)
    if got != CSV_SHA256:
        raise DatasetChecksumError(source, got)
    return path


def _existing(path: Path, source: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{CSV_NAME} not found at {path} ({source})")
    return _verified(path, source)


def locate_dataset(path: Path | str | None = None, settings: Settings | None = None, url: str = UCI_URL) -> Path:
    """Path of a verified ``student-mat.csv``, downloading it into the cache as a last resort.

    An explicit ``path`` or ``settings.data`` that does not exist is an error, not a fall-through.
    Raises :class:`DatasetChecksumError` for a file that is not the published one.
    """
    if path is not None:
        return _existing(Path(path), "explicit path")
    if settings is None:
        raise TypeError("locate_dataset needs an explicit path or the settings that say where to look")
    if settings.data is not None:
        return _existing(settings.data, "settings.data (MATHSIGHT_DATA)")
    shared = settings.shared_data_dir / CSV_NAME
    if shared.is_file():
        return _verified(shared, f"shared data directory {settings.shared_data_dir}")
    cached = settings.raw_dir / CSV_NAME
    if cached.is_file():
        return _verified(cached, f"cache {settings.raw_dir} (delete it to download again)")
    return download_dataset(url, settings.raw_dir)


def _fetch_bytes(url: str, timeout: float) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"only http(s) URLs can be downloaded, not {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            body = response.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise DatasetDownloadError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except OSError as exc:  # URLError, timeouts, refused or reset connections
        raise DatasetDownloadError(f"downloading {url} failed: {exc}") from exc
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise DatasetDownloadError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
    return body


def _extract_csv(archive: bytes, where: str, depth: int = 0) -> tuple[bytes, str]:
    """The bytes of ``student-mat.csv`` in ``archive`` (searching nested zips) and its member path."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            return _search_zip(zf, where, depth)
    except zipfile.BadZipFile as exc:
        raise DatasetDownloadError(f"{where} is not a readable zip archive: {exc}") from exc


def _search_zip(zf: zipfile.ZipFile, where: str, depth: int) -> tuple[bytes, str]:
    members = [m for m in zf.infolist() if not m.is_dir() and m.file_size <= MAX_DOWNLOAD_BYTES]
    for member in members:
        if Path(member.filename).name == CSV_NAME:
            return zf.read(member), member.filename
    nested = [m for m in members if m.filename.lower().endswith(".zip")] if depth < MAX_ZIP_DEPTH else []
    for member in nested:
        try:
            data, inner = _extract_csv(zf.read(member), member.filename, depth + 1)
        except DatasetDownloadError:
            continue
        return data, f"{member.filename}/{inner}"
    raise DatasetDownloadError(f"{where} contains no {CSV_NAME}")


def _write_atomically(data: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download_dataset(url: str, dest_dir: Path | str, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Download the UCI zip, extract and verify ``student-mat.csv``, and store it in ``dest_dir``
    (e.g. ``settings.raw_dir``). Nothing is written unless the checksum matches.
    """
    dest = Path(dest_dir) / CSV_NAME
    data, member = _extract_csv(_fetch_bytes(url, timeout), url)
    got = hashlib.sha256(data).hexdigest()
    if got != CSV_SHA256:
        raise DatasetChecksumError(f"{url} (member {member})", got)
    _write_atomically(data, dest)
    return dest


def _typed(column: pd.Series) -> pd.Series:
    return column.astype("int64") if column.str.fullmatch(r"\d+").all() else column


def load_raw(path: Path | str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """The 395 x 33 maths frame: all-digit columns as ``int64``, the others as ``str``.

    From ``path``, or else from where ``settings`` say (see :func:`locate_dataset`)."""
    frame = pd.read_csv(locate_dataset(path, settings), sep=";", dtype=str, keep_default_na=False)
    return frame.apply(_typed)


def fetch(path: Path | str | None = None, settings: Settings | None = None) -> Path:
    """``python -m model fetch-data``: make sure a verified copy is available and return its path."""
    return locate_dataset(path, settings)
