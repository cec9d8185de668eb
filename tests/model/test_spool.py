"""No lost predictions: log rows spool locally while the database is unreachable and replay exactly once.

The outage test is real: the app's engine talks to PostgreSQL through a TCP proxy the test owns; the
link is cut (open connections closed, new ones refused) under load from two threads, then restored.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from model.cli import main as cli
from model.errors import BatchRejected, InvalidInput
from model.serving.predlog import spool
from model.serving.predlog.writer import prepare_rows, write_log
from model.serving.service import ModelStore, predict_batch, predict_one
from model.settings import get_settings
from model.store.db import dispose_engines, get_engine
from model.store.tables import PredictionLog
from tests.conftest import _drop_postgres_schema, _postgres_schema_url, install_models

OUTAGE_SECONDS = 30.0  # the figure: the link is down this long while requests keep coming


def _spool() -> Path:
    return spool.spool_dir(get_settings())


def _dead_engine(tmp_path: Path, dialect: str) -> sa.Engine:
    """An engine whose database cannot be reached: a closed port, or a SQLite file in no directory."""
    if dialect == "postgresql":
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    return sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")


def _class_file(raw_df: pd.DataFrame, tag: str, n: int = 4, bad_row: bool = False) -> str:
    frame = raw_df.sample(n, random_state=zlib.crc32(tag.encode())).drop(columns=["G1", "G2", "G3"]).astype(object)
    frame.insert(0, "student_id", [f"{tag}-S{i}" for i in range(n)])
    if bad_row:
        frame.iloc[-1, frame.columns.get_loc("age")] = 99
    return frame.to_csv(index=False, sep=";")


def _counts_by_request(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as connection:
        query = sa.select(PredictionLog.request_id, sa.func.count()).group_by(PredictionLog.request_id)
        return Counter(dict(connection.execute(query).all()))


def _n_log_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(PredictionLog))


@pytest.fixture
def early_db(models_db_url: str) -> str:
    return models_db_url


# ------------------------------------------------------------------------------ spool and replay
def test_predictions_return_while_the_log_is_down_and_replay_exactly_once(
    early_db: str, raw_df: pd.DataFrame, tmp_path: Path
) -> None:
    live = get_engine(early_db)
    dead = _dead_engine(tmp_path, live.dialect.name)
    store = ModelStore(live, settings=get_settings())
    store.refresh(force=True)
    made = [predict_batch(store, dead, _class_file(raw_df, f"R{i}", bad_row=i == 1), channel="cli") for i in range(3)]
    assert [len(p.results) for p in made] == [4, 3, 4]
    assert spool.pending_rows(_spool()) == 12 and _n_log_rows(live) == 0
    assert (_spool() / spool.SPOOL_FILE).stat().st_mode & 0o777 == 0o600

    result = spool.replay_spool(live, _spool())
    assert (result.read, result.inserted, result.duplicates) == (12, 12, 0)
    assert _counts_by_request(live) == {p.request_id: 4 for p in made}
    assert spool.pending_files(_spool()) == [] and spool.replay_spool(live, _spool()).read == 0
    with live.connect() as connection:
        rows = connection.execute(sa.select(PredictionLog.status, PredictionLog.inputs)).all()
    assert Counter(status for status, _ in rows) == {"ok": 11, "rejected": 1}
    assert all(inputs["age"] <= 22 for status, inputs in rows if status == "ok")


def test_rows_replayed_twice_are_stored_once(early_db: str, tmp_path: Path) -> None:
    """A replay interrupted after its insert (file not yet removed) inserts nothing the second time."""
    live = get_engine(early_db)
    rows = prepare_rows([{"request_id": "req-1", "channel": "api", "status": "rejected"}] * 3, get_settings())
    spool.append(_spool(), rows)
    assert spool.replay_spool(live, _spool()).inserted == 3
    spool.append(_spool(), rows)
    spool.append(_spool(), rows)
    result = spool.replay_spool(live, _spool())
    assert (result.read, result.inserted, result.duplicates) == (6, 0, 6)
    assert _counts_by_request(live) == {"req-1": 3}


def test_the_next_successful_write_replays_the_spool(early_db: str, tmp_path: Path) -> None:
    live = get_engine(early_db)
    write_log(
        _dead_engine(tmp_path, live.dialect.name),
        get_settings(),
        [{"request_id": "down", "channel": "ui", "status": "ok"}],
    )
    assert spool.pending_rows(_spool()) == 1
    write_log(live, get_settings(), [{"request_id": "up", "channel": "ui", "status": "ok"}])
    assert spool.pending_files(_spool()) == []
    assert _counts_by_request(live) == {"down": 1, "up": 1}


def test_a_torn_line_is_kept_aside_and_the_rest_replayed(early_db: str) -> None:
    live = get_engine(early_db)
    path = spool.append(
        _spool(), prepare_rows([{"request_id": "ok-1", "channel": "cli", "status": "ok"}], get_settings())
    )
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"request_id": "torn", "chan')  # a crash in the middle of a write
    result = spool.replay_spool(live, _spool())
    assert (result.inserted, result.unreadable) == (1, 1)
    kept = [p.name for p in _spool().iterdir() if p.name.startswith("prediction_log")]
    assert len(kept) == 1 and kept[0].endswith(".unreadable")
    assert spool.pending_files(_spool()) == []


def test_concurrent_appends_keep_every_row_whole(tmp_path: Path) -> None:
    def worker(n: int) -> None:
        for i in range(50):
            spool.append(
                _spool(),
                prepare_rows([{"request_id": f"w{n}-{i}", "channel": "api", "status": "ok"}] * 5, get_settings()),
            )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = [row for path in spool.pending_files(_spool()) for row in spool._read(path)[0]]
    assert len(rows) == 4 * 50 * 5 and len({r["idempotency_key"] for r in rows}) == len(rows)


def test_spool_commands(early_db: str, tmp_path: Path, monkeypatch, capsys) -> None:
    live = get_engine(early_db)
    monkeypatch.setenv("DATABASE_URL", early_db)
    get_settings.cache_clear()
    spool.append(
        _spool(), prepare_rows([{"request_id": "cli-1", "channel": "cli", "status": "ok"}] * 2, get_settings())
    )
    assert cli.main(["spool", "status"]) == 0
    assert capsys.readouterr().out.startswith("2 rows waiting in 1 spool files")
    assert cli.main(["spool", "replay"]) == 0
    assert "2 spooled rows: 2 inserted, 0 were already logged" in capsys.readouterr().out
    assert _counts_by_request(live) == {"cli-1": 2}


# ------------------------------------------------------------------------- the real outage test
class CuttableProxy:
    """A TCP proxy on 127.0.0.1 to ``target``; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._links: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            links, self._links = self._links, set()
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for link in links:
            _close(link)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client), _close(upstream)
                    return
                self._links |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source), _close(sink)
            with self._lock:
                self._links -= {source, sink}


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@dataclass
class Load:
    """Two client threads sending class files and single students until told to stop."""

    store: ModelStore
    engine: sa.Engine
    raw_df: pd.DataFrame
    max_requests: int = 3000
    sent: Counter[str] = field(default_factory=Counter)  # request id -> rows sent
    failures: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    progress: threading.Condition = field(default_factory=threading.Condition)

    def run(self, thread: int) -> None:
        record = self.raw_df.iloc[thread].drop(["G1", "G2", "G3"]).to_dict()
        for n in range(self.max_requests):
            if self.stop.is_set():
                return
            try:
                if n % 3 == 2:
                    prediction = predict_one(self.store, self.engine, record | {"student_id": f"T{thread}-{n}"},
                                             channel="ui")  # fmt: skip
                    rows = 1
                else:
                    text = _class_file(self.raw_df, f"T{thread}-{n}", bad_row=n % 5 == 0)
                    prediction = predict_batch(self.store, self.engine, text, channel="api")
                    rows = len(prediction.results) + len(prediction.rejected_rows)
            except (BatchRejected, InvalidInput) as error:  # never expected here
                self.failures.append(error)
                return
            except Exception as error:  # a prediction that did not come back is the failure under test
                self.failures.append(error)
                continue
            with self.progress:
                self.sent[prediction.request_id] = rows
                self.progress.notify_all()

    def wait_for(self, requests: int, timeout: float = 120.0) -> None:
        """Block until ``requests`` more predictions have returned."""
        with self.progress:
            target = len(self.sent) + requests
            assert self.progress.wait_for(lambda: len(self.sent) >= target, timeout), "the load stalled"


@pytest.fixture
def proxied_postgres(trained_models: dict) -> Iterator[tuple[str, str, CuttableProxy]]:
    """(direct URL, URL through a cuttable proxy, the proxy) for a fresh PostgreSQL schema with models."""
    direct = _postgres_schema_url()
    proxy = CuttableProxy(("127.0.0.1", 5432))
    try:
        install_models(direct, {"early": trained_models["early"]})
        host = sa.make_url(direct)
        proxied = direct.replace(f"@{host.host}:{host.port}/", f"@127.0.0.1:{proxy.port}/")
        yield direct, proxied, proxy
    finally:
        proxy.cut()
        dispose_engines()
        _drop_postgres_schema(direct)


def _outage_under_load(proxied_postgres, raw_df: pd.DataFrame, outage_seconds: float, refresh_seconds: float) -> Load:
    direct, proxied, proxy = proxied_postgres
    engine = get_engine(proxied)
    load = Load(ModelStore(engine, settings=get_settings(), refresh_seconds=refresh_seconds), engine, raw_df)
    threads = [threading.Thread(target=load.run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        load.wait_for(10)
        proxy.cut()
        time.sleep(outage_seconds)  # the outage itself: requests keep coming while the link is down
        spooled_during_outage = spool.pending_rows(_spool())
        proxy.restore()
        load.wait_for(10)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join()
    assert spooled_during_outage > 0, "no request hit the outage"
    return load


@pytest.mark.slow
def test_postgresql_outage_under_load_loses_no_prediction_and_logs_each_row_once(
    proxied_postgres, raw_df: pd.DataFrame
) -> None:
    load = _outage_under_load(proxied_postgres, raw_df, OUTAGE_SECONDS, refresh_seconds=3.0)
    assert load.failures == []
    spool.replay_spool(get_engine(proxied_postgres[1]), _spool())  # whatever the automatic replay left
    assert spool.pending_files(_spool()) == []
    logged = _counts_by_request(get_engine(proxied_postgres[0]))
    assert logged == load.sent  # every row sent, none twice, nothing extra
    assert sum(logged.values()) == sum(load.sent.values()) > 0


def test_model_store_keeps_serving_while_the_registry_is_unreachable(proxied_postgres, raw_df: pd.DataFrame) -> None:
    load = _outage_under_load(proxied_postgres, raw_df, outage_seconds=3.0, refresh_seconds=0.2)
    assert load.failures == []


def test_prepared_rows_fill_missing_times_and_refuse_one_key_for_many() -> None:
    from datetime import UTC, datetime

    from model.serving.predlog.writer import prepare_columns

    at = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    rows = prepare_rows([{"request_id": "r", "channel": "ui", "status": "ok", "created_at": at},
                         {"request_id": "r", "channel": "ui", "status": "ok"}], get_settings())  # fmt: skip
    assert rows[0]["created_at"] == at and rows[1]["created_at"] > at
    assert [row["idempotency_key"] for row in rows] == ["r:0", "r:1"]
    with pytest.raises(ValueError, match="idempotency key"):
        prepare_columns({"request_id": "r", "idempotency_key": "k"}, 2, get_settings())


def test_rows_without_inputs_store_sql_null_whichever_way_they_are_written(db_url: str) -> None:
    from model.serving.predlog.insert import insert_rows
    from model.store.db import migrate

    engine = get_engine(db_url)
    migrate(engine)
    write_log(engine, get_settings(), [{"request_id": "direct", "channel": "api", "status": "rejected"}])
    insert_rows(
        engine, prepare_rows([{"request_id": "replayed", "channel": "api", "status": "rejected"}], get_settings())
    )
    with engine.connect() as connection:
        nulls = connection.execute(sa.select(sa.func.count()).where(PredictionLog.inputs.is_(None))).scalar_one()
    assert nulls == 2
