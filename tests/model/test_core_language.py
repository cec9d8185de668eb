"""The core speaks the context's language: English for the API, the CLI and anyone who set none,
European Portuguese inside ``use_language("pt_PT")``: field and result words, validation problems,
explanations of every student of the real maths file, and account messages."""

from __future__ import annotations

import pandas as pd
import pytest

from model import i18n
from model.accounts.users import AccountError, check_password_rules
from model.errors import InvalidInput
from model.i18n import tr
from model.ml.explain import (
    CAVEAT,
    GROUP_LABELS,
    REVERSE_NOTE,
    Change,
    FactorTable,
    chances_text,
    group_label,
    grouped,
    lever_sentence,
    sentence,
    summary_text,
)
from model.schema.fields import ATTRIBUTES, EXAMPLE_RECORD, FIELDS, GROUPS, SETUP_FEATURES, SETUPS
from model.schema.results import BAND_WORDS, COLUMNS, RISK_LABELS, SETUP_NOTES, band_text, percent_text, risk_text
from model.schema.validation import validate_batch, validate_record
from model.schema.values import describe_value
from tests.translations import english_words

PT = i18n.PORTUGUESE
BAD_RECORD = {**EXAMPLE_RECORD, "age": 25, "G1": None}  # age out of range, G2 without G1


def _problems(record: dict) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate_record(record)
    return str(caught.value)


def _english(texts: list[str]) -> list[str]:
    """The texts that still read as English (any English word)."""
    return sorted({text for text in texts if english_words(text)})


def _values(name: str) -> list[object]:
    spec = FIELDS[name]
    return list(spec.allowed) if spec.allowed is not None else list(range(spec.min, spec.max + 1))


def test_without_a_language_and_in_english_the_core_speaks_english() -> None:
    expected = ('field "age": 25 is out of range 15-22; field "G1": G2 is given but G1 is missing; give G1 too, '
                "or leave both empty for the early prediction")  # fmt: skip
    for context in (None, i18n.ENGLISH):
        with i18n.use_language(context):
            assert i18n.language() == i18n.ENGLISH
            assert _problems(BAD_RECORD) == expected
            assert sentence("failures", 3, -2.14) == "3 past class failures: \u22122.1 points"
            assert sentence("schoolsup", "yes", 0.5) == "Extra educational support (yes): +0.5 points"
            assert percent_text(0.001) == "below 1%" and percent_text(0.999) == "above 99%"
            assert percent_text(0.5) == "50%" and risk_text("high") == "high risk of failing"
            assert band_text("IV") == "10-11: sufficient (a pass)"
    assert _problems(BAD_RECORD) == expected  # the API's context: nothing set, English


def test_in_portuguese_the_same_calls_speak_portuguese() -> None:
    with i18n.use_language(PT):
        assert _problems(BAD_RECORD) == (
            'campo "age": 25 está fora do intervalo 15-22; campo "G1": G2 foi indicado mas G1 está em falta; '
            "indicar também G1, ou deixar ambos vazios para a previsão antecipada"
        )
        assert sentence("failures", 3, -2.14) == "3 reprovações anteriores: \u22122,1 pontos"
        assert sentence("failures", 1, 0.25) == "1 reprovação anterior: +0,2 pontos"
        assert sentence("schoolsup", "yes", 0.5) == "Apoio educativo da escola (sim): +0,5 pontos"
        assert sentence("guardian", "mother", 0.5) == "Encarregado de educação (mãe): +0,5 pontos"
        assert percent_text(0.001) == "menos de 1%" and percent_text(0.999) == "mais de 99%"
        assert percent_text(0.5) == "50%" and risk_text("high") == "risco alto de reprovar"
        assert band_text("IV") == "10-11: suficiente (aprovação)"
        assert Change("activities", "no", "yes", 0.6, 0.1).text == "Atividades extracurriculares: não → sim"
    assert sentence("failures", 3, -2.14) == "3 past class failures: \u22122.1 points"  # back to English after


def test_every_label_help_and_value_word_has_its_portuguese() -> None:
    """What the fronts show with tr(): field labels, help and value words, groups, result columns, risk
    and band words, setup notes."""
    texts = [*GROUPS, *RISK_LABELS.values(), *BAND_WORDS.values(), *SETUP_NOTES.values(), *GROUP_LABELS.values(),
             CAVEAT, REVERSE_NOTE]  # fmt: skip
    for spec in FIELDS.values():
        texts += [spec.label, spec.help]
    for column in COLUMNS.values():
        texts += [column.label, column.help, column.heading]
    with i18n.use_language(PT):
        shown = [tr(text) for text in texts]
        shown += [FIELDS[name].value_label(value) for name in FIELDS for value in FIELDS[name].value_labels]
        shown += [describe_value(name, value) for name in ATTRIBUTES for value in [*_values(name), None]]
        assert tr(COLUMNS["student_id"].label) == "N.º do aluno"
        assert tr(COLUMNS["p_no_grade"].heading) == "Risco de não ter nota final"
        assert tr(FIELDS["Mjob"].label) == "Profissão da mãe" and FIELDS["Mjob"].value_label("at_home") == "em casa"
    assert _english(shown) == []
    assert FIELDS["Mjob"].label == "Mother's job"  # the objects stay English (the API's schema reads them)
    assert FIELDS["Mjob"].value_label("at_home") == "at home"


@pytest.mark.parametrize("setup", SETUPS)
def test_every_students_explanation_is_portuguese(setup: str, trained_models: dict, raw_df: pd.DataFrame) -> None:
    """Every sentence explaining every student of the maths file, all factors of each, in one batch."""
    estimator = trained_models[setup].estimator
    explanation = estimator.explain(raw_df)
    details = estimator.predict_details(raw_df)
    table = FactorTable.build(explanation, raw_df, top=len(SETUP_FEATURES[setup]))
    sentences: list[str] = []
    with i18n.use_language(PT):
        for rank in range(len(SETUP_FEATURES[setup])):
            sentences += table.sentences(rank)
        for position, row in enumerate(table):
            factors = table[row]
            sentences.append(summary_text(explanation.raw_prediction[position], explanation.base_value, factors))
            for group, members in grouped(factors[:5]):
                sentences.append(group_label(group))
                sentences += [lever_sentence(factor) for factor in members]
        for p_pass, p_no_grade in zip(details["p_pass"], details["p_no_grade"], strict=True):
            sentences.append(chances_text(float(p_pass), float(p_no_grade)))
    assert len(sentences) > len(raw_df) * len(SETUP_FEATURES[setup])
    assert _english(sentences) == []
    assert all(text.endswith(" pontos") for text in sentences[: len(raw_df)])


def test_a_class_files_problems_are_portuguese() -> None:
    header = ";".join(ATTRIBUTES)
    good = ";".join(str(EXAMPLE_RECORD[name]) for name in ATTRIBUTES)
    bad = good.replace("GP;F;18", "XX;F;1.5", 1)
    data = f"{header};G2;mine\n{good};12;x\n{bad};;y\n"
    with i18n.use_language(PT):
        result = validate_batch(data.encode())
    messages = [problem.message for problem in result.problems]
    assert result.rejected_rows == [2, 3]  # row 2: G2 without G1
    assert 'linha 2, coluna "G1": G2 foi indicado mas G1 está em falta' in messages[1]
    assert messages[0].startswith("colunas desconhecidas ignoradas:")
    assert 'linha 3, coluna "school": "XX" não é permitido; permitido: GP, MS' in messages
    assert 'linha 3, coluna "age": "1.5" não é um número inteiro' in messages
    assert _english(messages) == []
    english = [problem.message for problem in validate_batch(data.encode()).problems]
    assert 'row 3, column "age": "1.5" is not a whole number' in english


def test_a_weak_password_is_refused_in_the_users_language() -> None:
    with i18n.use_language(PT), pytest.raises(AccountError) as caught:
        check_password_rules("password123", "ana")
    assert str(caught.value).startswith("a palavra-passe é demasiado fácil de adivinhar:")
    assert _english([str(caught.value)]) == []
    with pytest.raises(AccountError, match="the password is too easy to guess"):
        check_password_rules("password123", "ana")
