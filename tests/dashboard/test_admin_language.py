"""The admin's pages in European Portuguese: nothing left in English, with data on them; stored alerts
stay English and are shown translated."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from model import i18n
from model.monitoring import alerts
from model.monitoring.demo import demo_traffic
from model.serving.service import ModelStore
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import Alert
from tests.dashboard.conftest import Account, page_test, texts
from tests.model.test_drift import log_students, shifted
from tests.test_translations import PENDING
from tests.translations import english_left

PAGES = ["monitoring.py", "alerts.py", "models.py", "users.py", "api_keys.py", "school_settings.py"]
# The connecting words of a chart's sentence come from dashboard/charts.py, translated in its own change: until it
# leaves PENDING, those sentences are let through (the titles and series names in them are checked here).
CHART_WORDS = (" points from ", " point from ", "largest ") if "dashboard/charts.py" in PENDING else ()


@pytest.fixture
def demo(app_db_url: str, raw_df: pd.DataFrame) -> str:
    engine = get_engine(app_db_url)
    demo_traffic(engine, ModelStore(engine, settings=get_settings()), raw_df, days=14, rows_per_day=25, seed=3)
    return app_db_url


@pytest.mark.parametrize("page", PAGES)
def test_every_admin_page_speaks_portuguese_with_data(demo: str, admin_account: Account, page: str) -> None:
    at = page_test(page, admin_account.user, language="pt_PT").run()
    assert not at.exception, at.exception
    assert not english_left(at, allow=CHART_WORDS)


def test_the_monitoring_page_in_portuguese_words_and_numbers(demo: str, admin_account: Account) -> None:
    at = page_test("monitoring.py", admin_account.user, language="pt_PT").run()
    said = texts(at)
    assert "Linhas registadas" in said and "Taxa de erros" in said and "Dados de demonstração" in said
    assert "atributos com desvio" in said and "semana de" in said and "exatidão esperada" in said
    assert [t.label for t in at.tabs][:3] == ["Tráfego", "Previsões", "Desvio"]
    rate = next(m.value for m in at.metric if m.label == "Taxa de erros")
    assert "," in rate and rate.endswith("%")  # Portuguese decimal mark
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any('"separators":", "' in s.replace(" ", " ") or '"separators": ", "' in s for s in specs)
    assert any("Equidade ao longo do tempo por sexo" in s for s in specs)
    drift_table = next(f.value for f in at.dataframe if "psi" in f.value.columns)
    assert set(drift_table["verdict"]) <= {"com desvio", "sem desvio", "linhas insuficientes"}


def test_the_models_page_and_its_card_in_portuguese(demo: str, admin_account: Account) -> None:
    at = page_test("models.py", admin_account.user, language="pt_PT").run()
    said = texts(at)
    assert "Treinar uma nova versão" in said and "Promover ou reverter" in said
    # AppTest formats the widgets' values with the page's format_func in the test's own context: speak Portuguese
    with i18n.use_language(i18n.PORTUGUESE):
        at.button(key="card_button").click().run()
    assert not at.exception, at.exception
    card = texts(at)
    assert "Ficha do modelo:" in card and "Utilização prevista" in card and "Diferenças entre grupos" in card
    assert not english_left(at, allow=CHART_WORDS + ("Cortez", "UCI Machine Learning"))


def test_an_alert_is_stored_in_english_and_shown_in_portuguese(
    app_db_url: str, admin_account: Account, raw_df: pd.DataFrame
) -> None:
    engine = get_engine(app_db_url)
    log_students(engine, shifted(raw_df), at=pd.Timestamp.now(tz="UTC").to_pydatetime())
    at = page_test("alerts.py", admin_account.user, language="pt_PT").run()
    at.button[0].click().run()  # "Verificar as regras agora", in Portuguese: the stored row stays English
    with session_scope(engine) as session:
        [alert] = session.scalars(sa.select(Alert)).all()
        assert alert.detail["message"].startswith("input drift: ") and "attributes drifted" in alert.detail["message"]
        english = alert.detail["message"]
        with i18n.use_language(i18n.ENGLISH):
            assert alerts.alert_text(alert.rule, alert.value, alert.detail) == english
    at = page_test("alerts.py", admin_account.user, language="pt_PT").run()
    said = texts(at)
    assert "1 alerta em aberto" in said and "desvio dos dados de entrada" in said and "input drift" not in said
    assert not english_left(at)
    assert page_test("alerts.py", admin_account.user).run().dataframe[0].value["message"][0] == english
