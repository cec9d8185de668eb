"""The teacher's pages in European Portuguese: every page run through AppTest in ``pt_PT`` with the
results shown (a real student predicted, a real class uploaded, a student's year with an intervention and
an outcome), and nothing left reading as English; plus the figures in Portuguese form."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.charts import figure_sentence, importance_bars
from dashboard.columns import column_config
from dashboard.context import CurrentUser
from model import i18n
from model.ml import explain
from model.monitoring import acting
from model.schema.fields import ATTRIBUTES, FIELDS, GRADES
from model.schema.results import COLUMNS
from model.serving.interventions import record_intervention
from model.serving.outcomes import record_outcome
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog
from tests.dashboard.conftest import Account, download_labels, fill_student, page_test, texts
from tests.translations import english_left, english_words, shown_texts

PT = i18n.PORTUGUESE
IDS = ["S1", "S2", "S3", "S4", "S5"]
TYPED = ["depois das aulas"]  # the intervention's note, as the test typed it


def core_english() -> list[str]:
    """What the core says on these pages while its own catalog is not in this branch yet (the core's text
    is translated by the core: field labels and help, result column help, caveats, the sentences it
    builds). Empty once the core speaks Portuguese: then every text of the pages is checked."""
    with i18n.use_language(PT):
        if i18n.tr(explain.CAVEAT) != explain.CAVEAT:
            return []
    constants = [explain.CAVEAT, explain.REVERSE_NOTE, acting.CAVEAT, *(c.help for c in COLUMNS.values())]
    constants += [text for spec in FIELDS.values() for text in (spec.help, f"{spec.label}:", f"{spec.label} (")]
    built = ["past students like this one", " points", "review was due"]  # chances, factors, attention reasons
    return constants + built


def _strings(tree: object) -> list[str]:
    if isinstance(tree, dict) and "bdata" in tree:  # numbers, packed
        return []
    if isinstance(tree, dict):
        return [text for value in tree.values() for text in _strings(value)]
    if isinstance(tree, list):
        return [text for value in tree for text in _strings(value)]
    return [tree] if isinstance(tree, str) else []


def table_and_chart_texts(at: AppTest) -> list[str]:
    """What :func:`tests.translations.shown_texts` does not read: the tables' column headings and help,
    and every string of the charts (category labels on the axes, bar texts, annotations)."""
    found = []
    for table in at.dataframe:
        config = json.loads(table.proto.columns or "{}")
        found += [str(c.get(key)) for c in config.values() if isinstance(c, dict) for key in ("label", "help")
                  if c.get(key)]  # fmt: skip
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        found += [text for trace in spec["data"] for key in ("x", "y", "text", "name") for text in
                  _strings(trace.get(key))]  # fmt: skip
        found += [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    return found


def separators(at: AppTest) -> set[str]:
    return {json.loads(chart.proto.spec)["layout"].get("separators", "") for chart in at.get("plotly_chart")}


def _record(row: pd.Series) -> dict[str, Any]:
    return {name: row[name].item() if hasattr(row[name], "item") else row[name] for name in (*ATTRIBUTES, *GRADES)}


@pytest.fixture
def risky_student(raw_df: pd.DataFrame, trained_models: dict) -> dict[str, Any]:
    """The real student with the highest risk of no final grade (period-1 model), given extra support."""
    details = trained_models["period1"].estimator.predict_details(raw_df)
    return _record(raw_df.loc[details["p_no_grade"].idxmax()]) | {"schoolsup": "yes"}


@pytest.fixture
def year(app_db_url: str, teacher_account: Account, raw_df: pd.DataFrame) -> CurrentUser:
    """Tina's class of five real students, S1 made high risk, with an intervention and final grades for S1 and S2."""
    tina, settings, engine = teacher_account.user, get_settings(), get_engine(app_db_url)
    frame = raw_df.drop(columns=["G3"]).head(len(IDS)).copy()
    frame.insert(0, "student_id", IDS)
    store = ModelStore(engine, settings=settings)
    predict_batch(store, engine, frame.to_csv(sep=";", index=False), channel="ui", user_id=tina.id)
    with engine.begin() as connection:
        connection.execute(sa.update(PredictionLog).where(PredictionLog.student_key == student_key("S1", settings))
                           .values(p_pass=0.2, risk="high"))  # fmt: skip
    with session_scope(engine) as session:
        record_intervention(session, settings, tina.id, tina.username, student_id="S1", kind="tutoring",
                            status="active", start_date=date.today() - timedelta(days=30),
                            review_date=date.today() - timedelta(days=2), note="depois das aulas")  # fmt: skip
        record_outcome(session, settings, "S1", 8, tina.id)
        record_outcome(session, settings, "S2", 12, tina.id)
    return tina


def _fill_and_predict(at: AppTest, record: dict[str, Any]) -> AppTest:
    return fill_student(at, record, grades=("G1",), student_id="S-042").form_submit_button[0].click().run()


def _predict(at: AppTest, risky: dict[str, Any], user: CurrentUser, raw: pd.DataFrame, csv: Path) -> AppTest:
    at = _fill_and_predict(at.run(), risky)
    at.selectbox(key="whatif:schoolsup").set_value("no")
    at.number_input(key="whatif:absences").set_value(0)
    return next(b for b in at.form_submit_button if "whatif" in b.form_id).click().run()


def _upload(at: AppTest, risky: dict[str, Any], user: CurrentUser, raw: pd.DataFrame, csv: Path) -> AppTest:
    frame = pd.read_csv(csv, sep=";", dtype=str, keep_default_na=False).head(40)
    frame.insert(0, "student_id", [f"S{i:03d}" for i in range(len(frame))])
    frame.loc[3, "age"] = "99"
    at.run()
    at.file_uploader(key="upload_file").upload("turma.csv", frame.to_csv(sep=";", index=False).encode(), "text/csv")
    at.run()
    at.selectbox(key="upload_student").set_value(2)
    return at.run()


def _student(at: AppTest, risky: dict[str, Any], user: CurrentUser, raw: pd.DataFrame, csv: Path) -> AppTest:
    at.query_params["key"] = student_key("S1", get_settings())
    return at.run()


def _just_run(at: AppTest, risky: dict[str, Any], user: CurrentUser, raw: pd.DataFrame, csv: Path) -> AppTest:
    return at.run()


PAGES: dict[str, Callable[..., AppTest]] = {
    "predict.py": _predict,
    "upload.py": _upload,
    "student.py": _student,
    "my_students.py": _just_run,
    "needs_attention.py": _just_run,
    "acting.py": _just_run,
    "outcomes.py": _just_run,
}


ADMIN_ONLY = {"acting.py"}
# A few exact Portuguese texts each page shows (labels, options, captions, chart titles and sentences).
EXPECTED = {
    "predict.py": ["Um apoio à decisão, não um julgamento", "Resultado", "O que mais ajudaria", "E se…",
                   "Recalcular", "Um valor mais alto aqui não é razão para o interromper.", "N.º do aluno (opcional)",
                   "Aluno médio", "Este aluno", "pontos na nota", "Prever"],
    "upload.py": ["Linhas no ficheiro", "Previstas", "Rejeitadas", "Relatório de validação", "Maior risco primeiro",
                  "Porquê? A explicação de um aluno", "A turma num relance", "Notas finais previstas",
                  "Alunos por nível de risco", "nota prevista %{x}: %{y} alunos", "Resultados de **turma.csv**."],
    "student.py": ["Aluno", "Última P(aprovação)", "Nota final", "Intervenções", "**Registar uma intervenção**",
                   "Guardar intervenção", "Data de revisão", "Resultado final", "Risco de não ter nota final"],
    "my_students.py": ["Nível de risco", "Todos", "Previsão mais recente entre", "Cronologia",
                       "Apenas as suas próprias previsões"],
    "needs_attention.py": ["Alunos na lista", "Porque está na lista", "P(aprovação)", "**Os mais urgentes primeiro**"],
    "acting.py": ["Não se mostra a taxa de um grupo com menos de 10 alunos.", "Intervenção", "Taxa de aprovação"],
    "outcomes.py": ["Um aluno", "A partir de um ficheiro CSV", "Registar a nota", "As suas previsões recentes",
                    "Esta previsão foi", "Dar opinião", "Escolha uma opção"],
}  # fmt: skip


@pytest.mark.parametrize("page", list(PAGES))
def test_every_teacher_page_reads_fully_in_portuguese(
    page: str,
    year: CurrentUser,
    admin_account: Account,
    risky_student: dict,
    raw_df: pd.DataFrame,
    student_csv_path: Path,
) -> None:
    user = admin_account.user if page in ADMIN_ONLY else year
    with i18n.use_language(PT):  # AppTest calls the widgets' format_func (tr) in this thread
        at = PAGES[page](page_test(page, user, language=PT), risky_student, user, raw_df, student_csv_path)
        assert not at.exception, at.exception
        left = english_left(at, allow=[*TYPED, *core_english()])
        extra = table_and_chart_texts(at)
    allowed = (*TYPED, *core_english(), *(spec.label for spec in FIELDS.values()))
    left += [text for text in extra if len(english_words(text)) >= 2 and not any(a in text for a in allowed)]
    assert not left, "\n".join(left)
    assert separators(at) <= {", "}, "charts with the English decimal point"
    shown = shown_texts(at) + extra
    missing = [text for text in EXPECTED[page] if not any(text in said for said in shown)]
    assert not missing, missing


def test_the_predict_page_in_portuguese_for_a_student_likely_to_miss_the_exam(
    year: CurrentUser, risky_student: dict, raw_df: pd.DataFrame, student_csv_path: Path
) -> None:
    with i18n.use_language(PT):
        at = _predict(page_test("predict.py", year, language=PT), risky_student, year, raw_df, student_csv_path)
    assert not at.exception
    values = [m.value for m in at.metric]
    assert re.fullmatch(r"\d+ / 20", values[0]) and int(values[2].removesuffix("%").split()[-1]) >= 30, values
    said = texts(at)
    assert re.search(r"A cascata explica a nota esperada se o aluno fizer o exame final \(\d+,\d\)", said)
    assert "**Alterado:** " in said and "Todos os valores vêm de uma única distribuição prevista" in said
    assert list(at.table[0].value.columns) == ["Como introduzido", "E se", "Diferença"]
    assert at.table[0].value["Diferença"].str.contains("pontos percentuais").any()
    waterfall = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert waterfall["layout"]["separators"] == ", "
    assert waterfall["data"][0]["text"][0] == i18n.number(float(waterfall["data"][0]["x"][0]), 1).replace(".", ",")


def test_the_class_downloads_and_charts_speak_portuguese(
    year: CurrentUser, risky_student: dict, raw_df: pd.DataFrame, student_csv_path: Path
) -> None:
    with i18n.use_language(PT):
        at = _upload(page_test("upload.py", year, language=PT), risky_student, year, raw_df, student_csv_path)
    assert not at.exception
    assert download_labels(at) == ["Transferir o modelo de ficheiro CSV", "Transferir o relatório de validação (CSV)",
                                   "Transferir as previsões (CSV)"]  # fmt: skip
    assert [m.label for m in at.metric] == ["Linhas no ficheiro", "Previstas", "Rejeitadas"]
    assert [m.value for m in at.metric] == ["40", "39", "1"]
    captions = [c.value for c in at.caption]
    assert any(re.match(r"Notas finais previstas: 39 valores de \d+ a \d+, mediana \d+(,\d+)?\.$", c) for c in captions)
    assert any(c.startswith("Alunos por nível de risco: maiores ") for c in captions)
    assert separators(at) == {", "}


def test_chart_sentences_and_table_formats_follow_the_language() -> None:
    importance = pd.Series({"Absences": 0.4, "Past failures": 1.3, "Study time": 0.7})
    days = pd.to_datetime(["2026-12-01", "2026-12-02", "2026-12-03"])
    series = go.Figure(go.Scatter(x=days, y=[0.5, 0.25, 1.5], name="P"), layout={"title": "Over time"})
    grade, moment = COLUMNS["predicted_g3"], COLUMNS["created_at"]
    english = (figure_sentence(importance_bars(importance, "A", 2.0)), figure_sentence(series))
    assert english == ("A: largest Past failures (1.3), Study time (0.7), Absences (0.4).",
                       "Over time: P: 3 points from 2026-12-01 to 2026-12-03; highest 1.5 at 2026-12-03, lowest 0.25 "
                       "at 2026-12-02, last 1.5.")  # fmt: skip
    assert (column_config(grade)["type_config"]["format"], column_config(moment)["type_config"]["format"]) == (
        "%.1f", "YYYY-MM-DD HH:mm")  # fmt: skip
    with i18n.use_language(PT):
        assert figure_sentence(importance_bars(importance, "A", 2.0)) == (
            "A: maiores Past failures (1,3), Study time (0,7), Absences (0,4).")  # fmt: skip
        assert figure_sentence(series) == ("Over time: P: 3 pontos de 01/12/2026 a 03/12/2026; máximo 1,5 em "
                                           "03/12/2026, mínimo 0,25 em 02/12/2026, último 1,5.")  # fmt: skip
        assert column_config(grade)["type_config"]["format"] == "localized"
        assert column_config(moment)["type_config"]["format"] == "DD/MM/YYYY HH:mm"
        assert column_config(grade)["label"] == i18n.tr(grade.label)
