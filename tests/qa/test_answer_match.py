"""Exact-match normalisation and "when" scoring on hand-made answers."""

import pytest

from favor_ops.qa.answer_match import exact_match, first_time_s, normalise_answer, when_correct
from favor_ops.qa.prompt import format_span


@pytest.mark.parametrize("text, expected", [
    ("The Red circle.", "red circle"), ("  apple ", "apple"), ("a high beep", "high beep"),
    ("10 - 15s", "10 15s"), ("10-15s", "10 15s"), ("7.5-10s", "7.5 10s"), ("Yes.", "yes"), ("", ""),
])
def test_normalise_answer(text, expected):
    assert normalise_answer(text) == expected


def test_exact_match_ignores_case_articles_and_punctuation_but_not_words():
    assert exact_match("The apple.", "apple")
    assert not exact_match("apple pie", "apple")
    assert not exact_match("no", "yes")


def test_when_answers_count_within_one_window():
    assert first_time_s("from 12.5 to 15 s") == 12.5 and first_time_s("never") is None
    assert when_correct(format_span(10, 15), 10.0, 5.0)
    assert when_correct("15-20s", 10.0, 5.0)  # the next window: within one window
    assert not when_correct("20-25s", 10.0, 5.0)
    assert not when_correct("soon", 10.0, 5.0)
