"""model.ml.dataset: reading the real file, the lookup order, and downloads from a real local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from model.ml import dataset as data
from model.ml.dataset import (
    CSV_SHA256,
    DatasetChecksumError,
    DatasetDownloadError,
    dataset_sha256,
    download_dataset,
    fetch,
    load_raw,
    locate_dataset,
)
from model.settings import Settings, get_settings

CATEGORICAL = [
    "school", "sex", "address", "famsize", "Pstatus", "Mjob", "Fjob", "reason", "guardian",
    "schoolsup", "famsup", "paid", "activities", "nursery", "higher", "internet", "romantic",
]  # fmt: skip


# ---------------------------------------------------------------- the real file


def test_real_file_has_the_published_checksum(student_csv_path: Path) -> None:
    assert dataset_sha256(student_csv_path) == CSV_SHA256


def test_raw_frame_shape_and_dtypes(raw_df: pd.DataFrame) -> None:
    assert raw_df.shape == (395, 33)
    assert list(raw_df.columns[:3]) == ["school", "sex", "age"]
    assert list(raw_df.columns[-3:]) == ["G1", "G2", "G3"]
    for name in raw_df.columns:
        if name in CATEGORICAL:
            assert pd.api.types.is_string_dtype(raw_df[name]), name
        else:
            assert raw_df[name].dtype == "int64", name


def test_raw_frame_values(raw_df: pd.DataFrame) -> None:
    first = raw_df.iloc[0]
    # The file quotes some grades ("5"); they must come back as numbers, and strings unquoted.
    assert first[["school", "Mjob", "G1", "G2", "G3"]].tolist() == ["GP", "at_home", 5, 6, 6]
    assert set(raw_df["school"]) == {"GP", "MS"}
    assert raw_df["G3"].between(0, 20).all()
    assert raw_df["absences"].max() == 75
    assert not raw_df.isna().any().any()


# ---------------------------------------------------------------- lookup order


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty shared and cache directories in the environment, so no test sees the real ones."""
    paths = {name: tmp_path / name for name in ("shared", "raw", "elsewhere")}
    for path in paths.values():
        path.mkdir()
    monkeypatch.delenv("MATHSIGHT_DATA", raising=False)
    monkeypatch.setenv("MATHSIGHT_SHARED_DATA_DIR", str(paths["shared"]))
    monkeypatch.setenv("MATHSIGHT_RAW_DIR", str(paths["raw"]))
    get_settings.cache_clear()
    return paths


def _copy(src: Path, directory: Path) -> Path:
    return Path(shutil.copyfile(src, directory / "student-mat.csv"))


def test_explicit_path_comes_first(
    student_csv_path: Path, dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = _copy(student_csv_path, dirs["elsewhere"])
    monkeypatch.setenv("MATHSIGHT_DATA", str(_copy(student_csv_path, dirs["raw"])))
    get_settings.cache_clear()
    _copy(student_csv_path, dirs["shared"])
    assert locate_dataset(explicit) == explicit
    assert locate_dataset(str(explicit)) == explicit


def test_mathsight_data_beats_shared_dir_and_cache(
    student_csv_path: Path, dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = _copy(student_csv_path, dirs["elsewhere"])
    _copy(student_csv_path, dirs["shared"])
    _copy(student_csv_path, dirs["raw"])
    monkeypatch.setenv("MATHSIGHT_DATA", str(configured))
    get_settings.cache_clear()
    assert locate_dataset(settings=get_settings()) == configured
    assert load_raw(settings=get_settings()).shape == (395, 33)


def test_shared_dir_beats_cache(student_csv_path: Path, dirs: dict[str, Path]) -> None:
    shared = _copy(student_csv_path, dirs["shared"])
    _copy(student_csv_path, dirs["raw"])
    assert locate_dataset(settings=get_settings()) == shared


def test_default_settings_find_the_shared_file(student_csv_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATHSIGHT_DATA", raising=False)
    monkeypatch.delenv("MATHSIGHT_SHARED_DATA_DIR", raising=False)
    get_settings.cache_clear()
    assert locate_dataset(settings=get_settings()) == student_csv_path


def test_cache_is_used_when_nothing_else_is_there(student_csv_path: Path, dirs: dict[str, Path]) -> None:
    cached = _copy(student_csv_path, dirs["raw"])
    assert locate_dataset(settings=get_settings()) == cached
    assert fetch(settings=get_settings()) == cached


def test_settings_can_be_passed_in(student_csv_path: Path, tmp_path: Path) -> None:
    cached = _copy(student_csv_path, tmp_path)
    settings = Settings(shared_data_dir=tmp_path / "none", raw_dir=tmp_path)
    assert locate_dataset(settings=settings) == cached


def test_missing_explicit_or_configured_file_is_an_error(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match="explicit path"):
        locate_dataset(dirs["elsewhere"] / "nope.csv")
    monkeypatch.setenv("MATHSIGHT_DATA", str(dirs["elsewhere"] / "nope.csv"))
    get_settings.cache_clear()
    with pytest.raises(FileNotFoundError, match="MATHSIGHT_DATA"):
        locate_dataset(settings=get_settings())


def _tampered(student_csv_path: Path, directory: Path) -> Path:
    raw = bytearray(student_csv_path.read_bytes())
    raw[-3] = ord("9") if raw[-3] != ord("9") else ord("8")
    path = directory / "student-mat.csv"
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("where", ["explicit", "env", "shared", "raw"])
def test_a_modified_file_is_refused_wherever_it_is(
    where: str, student_csv_path: Path, dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _tampered(student_csv_path, dirs["elsewhere" if where in ("explicit", "env") else where])
    if where == "env":
        monkeypatch.setenv("MATHSIGHT_DATA", str(bad))
        get_settings.cache_clear()
    with pytest.raises(DatasetChecksumError) as info:
        load_raw(bad if where == "explicit" else None, get_settings())
    message = str(info.value)
    assert CSV_SHA256 in message and dataset_sha256(bad) in message
    assert info.value.got == dataset_sha256(bad)


# ---------------------------------------------------------------- downloads from a local server


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1 serving ``routes`` (path -> body); anything else is a 404."""

    base: str
    routes: dict[str, bytes] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


class _Handler(http.server.BaseHTTPRequestHandler):
    state: Server

    def do_GET(self) -> None:
        self.state.hits.append(self.path)
        body = self.state.routes.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def _http_server() -> Iterator[Server]:
    state = Server(base="")
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(_http_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The module's server with no routes and no hits; proxies bypassed for 127.0.0.1."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    _http_server.routes.clear()
    _http_server.hits.clear()
    return _http_server


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def _uci_like(csv: bytes) -> bytes:
    """The archive's real shape: an outer zip holding ``student.zip`` holding the CSVs."""
    inner = _zip({"student-por.csv": b"school;sex\n", "student-mat.csv": csv, "student.txt": b"codebook"})
    return _zip({"student.zip": inner})


def test_download_nested_zip(student_csv_path: Path, server: Server, tmp_path: Path) -> None:
    server.routes["/uci.zip"] = _uci_like(student_csv_path.read_bytes())
    got = download_dataset(server.url("/uci.zip"), tmp_path / "cache")
    assert got == tmp_path / "cache" / "student-mat.csv"
    assert dataset_sha256(got) == CSV_SHA256
    assert [p.name for p in got.parent.iterdir()] == ["student-mat.csv"]


def test_download_flat_zip(student_csv_path: Path, server: Server, tmp_path: Path) -> None:
    server.routes["/flat.zip"] = _zip({"README": b"x", "student/student-mat.csv": student_csv_path.read_bytes()})
    got = download_dataset(server.url("/flat.zip"), tmp_path)
    assert got.read_bytes() == student_csv_path.read_bytes()


def test_download_replaces_an_old_cache_file(student_csv_path: Path, server: Server, tmp_path: Path) -> None:
    (tmp_path / "student-mat.csv").write_bytes(b"stale")
    server.routes["/uci.zip"] = _uci_like(student_csv_path.read_bytes())
    assert dataset_sha256(download_dataset(server.url("/uci.zip"), tmp_path)) == CSV_SHA256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student-mat.csv"]


def test_corrupted_csv_is_refused_and_nothing_is_cached(student_csv_path: Path, server: Server, tmp_path: Path) -> None:
    raw = bytearray(student_csv_path.read_bytes())
    raw[100] ^= 0x01
    server.routes["/uci.zip"] = _uci_like(bytes(raw))
    cache = tmp_path / "cache"
    with pytest.raises(DatasetChecksumError) as info:
        download_dataset(server.url("/uci.zip"), cache)
    message = str(info.value)
    assert CSV_SHA256 in message
    assert hashlib.sha256(raw).hexdigest() in message
    assert "/uci.zip" in message and "student.zip/student-mat.csv" in message
    assert not cache.exists() or not any(cache.iterdir())


def test_non_zip_body_is_refused(server: Server, tmp_path: Path) -> None:
    server.routes["/page.zip"] = b"<html>maintenance</html>"
    with pytest.raises(DatasetDownloadError, match="not a readable zip"):
        download_dataset(server.url("/page.zip"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_zip_without_the_csv_is_refused(server: Server, tmp_path: Path) -> None:
    server.routes["/other.zip"] = _zip({"student.zip": _zip({"student-por.csv": b"a;b\n"}), "x.txt": b""})
    with pytest.raises(DatasetDownloadError, match="contains no student-mat.csv"):
        download_dataset(server.url("/other.zip"), tmp_path)


def test_http_404_is_reported(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DatasetDownloadError, match="HTTP 404"):
        download_dataset(server.url("/missing.zip"), tmp_path)
    assert server.hits == ["/missing.zip"]
    assert not any(tmp_path.iterdir())


def test_connection_refused_is_reported(tmp_path: Path) -> None:
    with socket.socket() as sock:  # bound but not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(DatasetDownloadError, match="failed"):
            download_dataset(f"http://127.0.0.1:{port}/uci.zip", tmp_path, timeout=5)


def test_only_http_urls_are_downloaded(student_csv_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        download_dataset(student_csv_path.as_uri(), tmp_path)


def test_locate_downloads_once_then_uses_the_cache(
    student_csv_path: Path, server: Server, dirs: dict[str, Path]
) -> None:
    server.routes["/uci.zip"] = _uci_like(student_csv_path.read_bytes())
    first = locate_dataset(settings=get_settings(), url=server.url("/uci.zip"))
    assert first == dirs["raw"] / "student-mat.csv"
    assert locate_dataset(settings=get_settings(), url=server.url("/uci.zip")) == first
    assert server.hits == ["/uci.zip"]
    assert load_raw(settings=get_settings()).shape == (395, 33)


def test_download_goes_to_the_directory_given(student_csv_path: Path, server: Server, dirs: dict[str, Path]) -> None:
    server.routes["/uci.zip"] = _uci_like(student_csv_path.read_bytes())
    assert download_dataset(server.url("/uci.zip"), get_settings().raw_dir) == dirs["raw"] / "student-mat.csv"


def test_without_a_path_the_settings_must_be_given() -> None:
    with pytest.raises(TypeError, match="explicit path or the settings"):
        locate_dataset()
    with pytest.raises(TypeError, match="explicit path or the settings"):
        load_raw()


def test_public_constants() -> None:
    assert data.UCI_URL == "https://archive.ics.uci.edu/static/public/320/student+performance.zip"
    assert len(CSV_SHA256) == 64
