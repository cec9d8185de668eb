"""Structured request logs: one JSON line per request, rotated by size, no personal data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from model import logs
from model.errors import BatchRejected
from model.serving.service import ModelStore, predict_batch
from model.settings import Settings, get_settings
from model.store import db


@pytest.fixture
def log_file() -> Iterator[Path]:
    path = logs.configure_logging(get_settings())
    yield path
    logs.configure_logging(get_settings())  # closes the file handler of this test


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_a_request_is_one_json_line_with_its_fields(capsys: pytest.CaptureFixture[str], log_file: Path) -> None:
    logs.log_request(request_id="abc", channel="api", n_rows=3, latency_ms=12.3456, status="ok", setups={"early": 3})
    [line] = lines(log_file)
    assert line | {"ts": None} == {
        "ts": None, "level": "INFO", "logger": "mathsight.requests", "message": "prediction request",
        "event": "request", "request_id": "abc", "channel": "api", "setups": {"early": 3}, "n_rows": 3,
        "n_rejected": 0, "latency_ms": 12.346, "status": "ok", "error_type": None,
    }  # fmt: skip
    assert json.loads(capsys.readouterr().err.strip()) == line  # the same line on stderr


def test_the_file_rotates_by_size(tmp_path: Path) -> None:
    settings = Settings(log_dir=tmp_path, log_max_bytes=2_000, log_backups=2)
    path = logs.configure_logging(settings)
    try:
        for i in range(60):
            logs.log_request(request_id=f"r{i}", channel="ui", n_rows=1, latency_ms=1.0, status="ok")
    finally:
        logs.configure_logging(get_settings())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mathsight.jsonl", "mathsight.jsonl.1", "mathsight.jsonl.2"]
    assert all(p.stat().st_size <= 2_000 for p in tmp_path.iterdir())
    assert lines(path)[-1]["request_id"] == "r59"


def test_the_service_logs_each_request_without_student_ids_or_inputs(
    models_db_url: str, raw_df: pd.DataFrame, student_csv_path: Path, log_file: Path
) -> None:
    engine = db.get_engine(models_db_url)
    frame = raw_df.head(5).copy()
    frame.insert(0, "student_id", [f"secret-student-{i}" for i in range(5)])
    frame.loc[frame.index[0], "age"] = 99
    predict_batch(
        ModelStore(engine, settings=get_settings()), engine, frame.to_csv(sep=";", index=False), channel="cli"
    )
    with pytest.raises(BatchRejected):
        predict_batch(
            ModelStore(engine, settings=get_settings()), engine, b"not;a;student;file\n1;2;3;4\n", channel="api"
        )
    db.dispose_engines()
    text = log_file.read_text("utf-8")
    assert "secret-student" not in text and "GP" not in text
    ok, rejected = lines(log_file)
    assert (ok["channel"], ok["n_rows"], ok["n_rejected"], ok["status"]) == ("cli", 5, 1, "partial")
    assert sum(ok["setups"].values()) == 4
    assert (rejected["channel"], rejected["status"], rejected["error_type"]) == ("api", "rejected", "BatchRejected")
