"""Recovery figures, counted from the moment the storage came back."""

import pytest

from toolkit.recovery import Answer, after_recovery


def test_figures_count_from_back_and_ignore_what_came_before() -> None:
    answers = [
        Answer(t=9.0, ok=False),
        Answer(t=10.5, ok=False),
        Answer(t=11.0, ok=True, instance="storage1"),
        Answer(t=12.5, ok=True, instance="storage2"),
    ]
    figures = after_recovery(answers, back_t=10.0, failed_instance="storage2")
    assert figures.first_2xx_after_s == pytest.approx(1.0)
    assert figures.back_in_rotation_s == pytest.approx(2.5)
    assert figures.last_error_after_s == pytest.approx(0.5)
    assert figures.errors_after == 1


def test_what_never_happened_is_none_not_zero() -> None:
    figures = after_recovery([Answer(t=11.0, ok=False)], back_t=10.0, failed_instance="storage2")
    assert figures.first_2xx_after_s is None
    assert figures.back_in_rotation_s is None
    assert figures.errors_after == 1


def test_bucketed_errors_count_each_answer_and_report_the_bucket_end() -> None:
    answers = [Answer(t=10.0, ok=False, count=7, t_last=10.1), Answer(t=10.1, ok=True)]
    figures = after_recovery(answers, back_t=10.0)
    assert figures.errors_after == 7
    assert figures.last_error_after_s == pytest.approx(0.1)
    # No failed service named: the figure about it is not computed.
    assert figures.back_in_rotation_s is None
