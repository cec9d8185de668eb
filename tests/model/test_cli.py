"""`python -m model ...` as a user runs it: exit codes and files."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa

from model.cli.main import build_parser, main
from model.schema.validation import G2_WITHOUT_G1
from model.settings import PROJECT_ROOT
from model.store.db import get_engine
from model.store.tables import PredictionLog
from tests.conftest import swap_artifact


def test_predict_exit_codes_and_outputs(app_db_url: str, student_csv_path, tmp_path, capsys) -> None:
    good = tmp_path / "class.csv"
    good.write_text("\n".join(student_csv_path.read_text().splitlines()[:11]))
    out = tmp_path / "out.csv"
    assert main(["predict", "--input", str(good), "--output", str(out)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert len(table) == 10 and {"predicted_g3", "lower", "upper", "p_pass", "band", "factor_1"} <= set(table.columns)
    assert table["row"].tolist() == list(range(2, 12))

    mixed = tmp_path / "mixed.csv"
    mixed.write_text(good.read_text().replace('"at_home"', '"astronaut"', 1))
    assert main(["predict", "--input", str(mixed), "--output", str(out)]) == 3
    rejected = pd.read_csv(tmp_path / "out.rejected.csv", encoding="utf-8-sig")
    assert rejected[["row", "column", "value"]].values.tolist() == [[2, "Mjob", "astronaut"]]
    assert "astronaut" in capsys.readouterr().err

    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\x00\xff\x00 not a csv")
    assert main(["predict", "--input", str(broken), "--output", str(out)]) == 2
    with get_engine(app_db_url).connect() as connection:  # the refused file is logged once, as rejected
        refused = connection.execute(
            sa.select(PredictionLog.channel, PredictionLog.status).where(PredictionLog.error_type == "BatchRejected")
        ).all()
    assert refused == [("cli", "rejected")]
    assert main(["predict", "--input", str(tmp_path / "missing.csv"), "--output", str(out)]) == 2


def test_versions_promote_and_rollback(app_db_url: str, capsys) -> None:
    assert main(["versions"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("*") == 3
    assert main(["rollback", "early"]) == 2
    assert "no previous model version" in capsys.readouterr().err
    assert main(["promote", "early-does-not-exist"]) == 2
    assert main(["timeline", "early"]) == 0
    out = capsys.readouterr().out
    assert out.count("serving") == 1 and "promote" in out


def test_module_entry_point_runs(app_db_url: str) -> None:
    result = subprocess.run([sys.executable, "-m", "model", "--help"], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0 and "evaluate" in result.stdout


COMMANDS = {"fetch-data", "compile-translations", "migrate", "bootstrap", "train", "evaluate", "versions",
            "promote", "rollback", "timeline", "compare", "judge", "gate", "card", "export", "predict",
            "monitor", "demo-traffic", "apikey", "users", "rotate-key", "spool", "retention", "digest"}  # fmt: skip


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under ``parser`` (itself included), named by its command path."""
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """The arguments, of any command under ``parser``, whose ``--help`` does not say what they take."""
    skipped = argparse._HelpAction | argparse._SubParsersAction
    return [f"{path} {action.dest}".strip() for path, command in _parsers(parser) for action in command._actions
            if not isinstance(action, skipped) and not action.help]  # fmt: skip


def test_every_command_is_there_and_every_option_says_what_it_takes() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == COMMANDS
    assert undocumented(parser) == []
    for path, command in _parsers(parser):
        assert command.format_help(), path  # every --help renders (no stray % in a help text)


def test_an_option_without_help_is_reported() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    sub.add_parser("train").add_argument("--data")
    assert undocumented(parser) == ["train data"]


def test_predict_rejects_a_row_with_g2_but_no_g1(app_db_url: str, student_csv_path, tmp_path, capsys) -> None:
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False).head(4)
    frame.loc[1, "G1"] = ""
    source, out = tmp_path / "class.csv", tmp_path / "out.csv"
    frame.to_csv(source, sep=";", index=False)
    assert main(["predict", "--input", str(source), "--output", str(out)]) == 3
    assert pd.read_csv(out, encoding="utf-8-sig")["row"].tolist() == [2, 4, 5]
    rejected = pd.read_csv(tmp_path / "out.rejected.csv", encoding="utf-8-sig")
    assert rejected[["row", "column"]].values.tolist() == [[3, "G1"]]
    assert f'row 3, column "G1": {G2_WITHOUT_G1}' in capsys.readouterr().err


def test_a_swapped_artifact_is_an_exit_2_message_naming_the_version(
    app_db_url: str, student_csv_path, tmp_path, capsys
) -> None:
    victim = swap_artifact(app_db_url, into="period2", source="early")
    good = tmp_path / "class.csv"
    good.write_text("\n".join(student_csv_path.read_text().splitlines()[:4]))
    assert main(["predict", "--input", str(good), "--output", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert f"error: the model for setup 'period2' is unavailable: its active version {victim}" in err
    assert f"refusing to load the artifact of model version {victim}: its HMAC signature does not match" in err
    assert "Traceback" not in err
    assert main(["promote", victim, "--by", "pytest"]) == 2
    assert f"refusing to load the artifact of model version {victim}" in capsys.readouterr().err


def test_migrate_re_signs_versions_of_the_old_scheme(app_db_url: str, capsys) -> None:
    from model.settings import get_settings
    from model.store import registry
    from model.store.db import get_engine, session_scope

    with session_scope(get_engine(app_db_url)) as session:
        early = registry.active_version_ids(session)["early"]
        version = registry.get_version(session, early)
        version.artifact_hmac = registry.sign(version.artifact, settings=get_settings())  # as before 0008
        version.signature_scheme = 1
    assert main(["migrate"]) == 0
    assert f"re-signed model version {early}" in capsys.readouterr().out
    with session_scope(get_engine(app_db_url)) as session:
        version = registry.get_version(session, early)
        assert version.signature_scheme == registry.SIGNATURE_SCHEME
        registry.verify_artifact(version, settings=get_settings())
    assert main(["migrate"]) == 0
    assert "re-signed" not in capsys.readouterr().out


def test_predict_streams_a_file_in_chunks_as_the_one_shot_path(app_db_url: str, student_csv_path, tmp_path) -> None:
    """Several chunks (shared out to the worker processes) give the bytes of one prediction of the whole file."""
    import sqlalchemy as sa

    from model.serving.downloads import problems_table, results_table, to_csv_bytes
    from model.serving.service import ModelStore, predict_batch
    from model.settings import get_settings
    from model.store.db import get_engine

    header, *lines = student_csv_path.read_text().splitlines()
    rows = [line.split(";") for line in lines[:90]]
    rows[7][header.split(";").index("Mjob")] = '"astronaut"'  # chunk 1
    rows[55][header.split(";").index("age")] = "99"  # chunk 3
    rows = [";".join(row) for row in rows]
    rows[88] = rows[88] + ";x;y;z;w;v"  # chunk 4: more values than the header, too many for pandas' fast reader
    source = tmp_path / "district.csv"
    source.write_text("\n".join([header, *rows[:40], "", *rows[40:]]) + "\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--input", str(source), "--output", str(out), "--chunk-rows", "25"]) == 3

    settings = get_settings()
    engine = get_engine(app_db_url)
    with engine.connect() as connection:
        logged = connection.execute(sa.text("SELECT request_id, status FROM prediction_log")).all()
    assert len({request for request, _ in logged}) == 4  # one request per chunk of 25 records
    assert sorted(status for _, status in logged) == ["ok"] * 87 + ["rejected"] * 3
    whole = predict_batch(ModelStore(engine, settings=settings), engine, source.read_bytes(), channel="cli")
    assert out.read_bytes() == to_csv_bytes(results_table(whole))
    assert (tmp_path / "out.rejected.csv").read_bytes() == to_csv_bytes(problems_table(whole.problems))
    assert whole.rejected_rows == [9, 58, 91]  # the header is row 1; the blank line after row 41 counts
