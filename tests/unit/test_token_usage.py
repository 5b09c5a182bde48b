"""A turn's token accounting: the worst case is a true upper bound, the limits per kind of owner, and the
usage metrics with their own Model dimension."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbot_security.conversation.model_providers import ChatMessage, system_prompt
from chatbot_security.conversation.token_usage import (
    FRAMING_TOKENS_PER_MESSAGE,
    FRAMING_TOKENS_PER_REQUEST,
    daily_limit,
    estimated_cost_usd,
    history_within,
    input_bound,
    metric_model_name,
    publish_usage,
    text_bound,
    worst_case,
)
from chatbot_security.platform.settings import Settings

SETTINGS = Settings.model_validate({"MODEL_MAX_TOKENS": "100"})


def test_a_text_is_bounded_by_its_utf8_bytes() -> None:
    assert text_bound("hello") == 5
    assert text_bound("héllo") == 6
    assert text_bound("日本") == 6
    assert text_bound("🙂") == 4


@given(st.text())
def test_a_text_never_has_more_words_than_its_bound(text: str) -> None:
    # The echo model counts whitespace-separated words: never more than the bytes.
    assert len(text.split()) <= text_bound(text)


def test_the_input_bound_counts_the_system_prompt_the_history_and_the_message_with_their_framing() -> None:
    history = [ChatMessage("user", "abc"), ChatMessage("assistant", "de")]

    bound = input_bound("sys", history, "f")

    assert bound == FRAMING_TOKENS_PER_REQUEST + (3 + 3 + 2 + 1) + 4 * FRAMING_TOKENS_PER_MESSAGE


def test_the_worst_case_adds_the_most_the_model_may_write() -> None:
    history = [ChatMessage("user", "question")]

    assert worst_case(SETTINGS, history, "again") == input_bound(system_prompt(SETTINGS), history, "again") + 100


def test_a_history_within_the_reservation_is_sent_whole() -> None:
    history = [ChatMessage("user", "one"), ChatMessage("assistant", "two")]
    reserved = worst_case(SETTINGS, history, "three")

    assert history_within(SETTINGS, history, "three", reserved) == history


def test_a_history_that_grew_after_the_reservation_loses_its_oldest_messages() -> None:
    reserved = worst_case(SETTINGS, [ChatMessage("user", "x" * 50)], "three")
    grown = [ChatMessage("user", "y" * 30), ChatMessage("assistant", "z" * 30)]

    kept = history_within(SETTINGS, grown, "three", reserved)

    assert kept == [ChatMessage("assistant", "z" * 30)]
    assert worst_case(SETTINGS, kept, "three") <= reserved


def test_signed_in_users_and_anonymous_sessions_have_their_own_daily_limit() -> None:
    settings = Settings.model_validate({"TOKENS_PER_DAY": "5000", "ANON_TOKENS_PER_DAY": "700"})

    assert daily_limit(settings, "user") == 5000
    assert daily_limit(settings, "anonymous") == 700


def test_the_defaults_are_the_contracts() -> None:
    settings = Settings.model_validate({})

    assert (settings.tokens_per_day, settings.anon_tokens_per_day, settings.daily_token_budget) == (200000, 20000, 0)


@pytest.mark.parametrize(
    "variable", ["TOKENS_PER_DAY", "ANON_TOKENS_PER_DAY", "MODEL_INPUT_PRICE_PER_MTOK", "DAILY_TOKEN_BUDGET"]
)
def test_a_negative_limit_or_price_is_refused(variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings.model_validate({variable: "-1"})


def test_the_metric_model_is_the_model_id_or_else_the_provider() -> None:
    assert metric_model_name(Settings.model_validate({"MODEL_PROVIDER": "echo"})) == "echo"
    assert metric_model_name(Settings.model_validate({"MODEL_ID": "eu.anthropic.claude-haiku-5-5"})) == (
        "eu.anthropic.claude-haiku-5-5"
    )


def test_the_estimated_cost_uses_the_price_of_each_direction() -> None:
    settings = Settings.model_validate({"MODEL_INPUT_PRICE_PER_MTOK": "3", "MODEL_OUTPUT_PRICE_PER_MTOK": "15"})

    assert estimated_cost_usd(settings, 1_000_000, 200_000) == pytest.approx(3 + 3)


def _emf_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and "_aws" in line]


def test_usage_metrics_carry_the_model_dimension_and_the_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "chatbot-stack")
    settings = Settings.model_validate({"MODEL_ID": "model-a", "MODEL_INPUT_PRICE_PER_MTOK": "2"})

    publish_usage(settings, input_tokens=500_000, output_tokens=10)

    published = {}
    for line in _emf_lines(capsys.readouterr().out):
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Chatbot"
        assert set(directive["Dimensions"][0]) == {"Model", "service"}
        assert (line["Model"], line["service"]) == ("model-a", "chatbot-stack")
        (metric,) = directive["Metrics"]
        (published[metric["Name"]],) = line[metric["Name"]]
    assert published == {
        "ModelInputTokens": 500_000,
        "ModelOutputTokens": 10,
        "ModelEstimatedCostUsd": pytest.approx(1 + 10 * 5 / 1_000_000),
    }


def test_usage_metrics_leave_the_functions_other_metrics_without_the_model_dimension(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from chatbot_security.platform.observability import metrics

    metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
    publish_usage(SETTINGS, input_tokens=1, output_tokens=1)
    metrics.flush_metrics()

    (shared,) = [line for line in _emf_lines(capsys.readouterr().out) if "RateLimited" in line]
    assert "Model" not in shared
