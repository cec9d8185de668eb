"""Any training file of the schema on every CLI front (issue 14, item 1): checked like an upload, never by
the bundled file's SHA-256; a file with bad rows is refused with every problem listed and nothing trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.cli.main import main
from model.store.db import get_engine, session_scope
from model.store.registry import active_version_ids, list_versions


@pytest.fixture(scope="module")
def school_file(student_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another school's export in the same columns: the real rows shuffled, re-sampled to 300, some altered,
    written with ',' (not the UCI ';')."""
    raw = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(14)
    frame = raw.sample(n=300, replace=True, random_state=14).reset_index(drop=True)
    altered = rng.choice(len(frame), size=12, replace=False)
    frame.loc[altered, "absences"] = [str(v) for v in rng.integers(0, 30, size=12)]
    frame.loc[altered, "school"] = "MS"
    path = tmp_path_factory.mktemp("school") / "our-school.csv"
    frame.to_csv(path, sep=",", index=False)
    assert Path(path).read_bytes() != student_csv_path.read_bytes()
    return path


@pytest.fixture
def broken_file(school_file: Path, tmp_path: Path) -> Path:
    frame = pd.read_csv(school_file, dtype=str, keep_default_na=False)
    frame.loc[3, "age"] = "41"
    frame.loc[7, "Mjob"] = "astronaut"
    frame.loc[9, "G3"] = ""
    path = tmp_path / "broken.csv"
    frame.to_csv(path, index=False)
    return path


def _versions(url: str) -> list[str]:
    with session_scope(get_engine(url)) as session:
        return [v.id for v in list_versions(session)]


def test_train_on_another_file_of_the_schema(app_db_url: str, school_file: Path, capsys) -> None:
    before = _versions(app_db_url)
    assert main(["train", "--data", str(school_file), "--setup", "early", "--runs", "1", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    new = sorted(set(_versions(app_db_url)) - set(before))
    assert len(new) == 1 and new[0] in out and "binary_accuracy" in out
    with session_scope(get_engine(app_db_url)) as session:
        version = next(v for v in list_versions(session) if v.id == new[0])
        assert version.n_rows == 300 and version.metrics["protocol_runs"] == 1
        assert new[0] not in active_version_ids(session).values()


def test_evaluate_on_another_file_of_the_schema(school_file: Path, tmp_path: Path, capsys) -> None:
    report = tmp_path / "figures.json"
    code = main(["evaluate", "--data", str(school_file), "--setup", "period2", "--runs", "1", "--jobs", "1",
                 "--json", str(report)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "300 students" in out and "period2 (A)" in out
    assert report.is_file()


def test_a_file_with_bad_rows_is_listed_and_nothing_is_trained(app_db_url: str, broken_file: Path, capsys) -> None:
    before = _versions(app_db_url)
    for command in (["train", "--setup", "early", "--runs", "0"], ["evaluate", "--runs", "1"]):
        assert main([*command, "--data", str(broken_file)]) == 2
        err = capsys.readouterr().err
        assert "3 problem(s)" in err
        assert 'row 5, column "age"' in err and "41" in err and "15-22" in err
        assert 'row 9, column "Mjob"' in err and "astronaut" in err and "at_home" in err
        assert 'row 11, column "G3"' in err
        assert "Traceback" not in err and "SHA-256" not in err
    assert _versions(app_db_url) == before


def test_compare_and_card_take_a_file_too(app_db_url: str, school_file: Path, broken_file: Path, capsys) -> None:
    with session_scope(get_engine(app_db_url)) as session:
        active = active_version_ids(session)
    assert main(["compare", active["early"], active["period2"], "--data", str(school_file)]) == 0
    assert "of 300 reference students" in capsys.readouterr().out
    assert main(["card", active["early"], "--data", str(broken_file)]) == 2
    assert "3 problem(s)" in capsys.readouterr().err


def test_a_missing_file_is_a_clear_error(app_db_url: str, tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(tmp_path / "nowhere.csv"), "--runs", "0"]) == 2
    err = capsys.readouterr().err
    assert "cannot read the training file" in err and "nowhere.csv" in err
