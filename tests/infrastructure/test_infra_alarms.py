"""Alarms (rule 11): authorizer denials, 429s, 5xx, function errors and throttles, cleanup failures."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from support.stack_resources import FUNCTIONS

REPO_ROOT = Path(__file__).resolve().parents[2]

SERVICE_DIMENSION = [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]


def _alarms(stack) -> dict[str, dict]:
    return {lid: res["Properties"] for lid, res in stack.of_type("AWS::CloudWatch::Alarm").items()}


def _find(stack, namespace, metric: str, dimensions=None) -> list[dict]:
    return [
        alarm
        for alarm in _alarms(stack).values()
        if alarm.get("Namespace") == namespace
        and alarm.get("MetricName") == metric
        and (dimensions is None or alarm.get("Dimensions") == dimensions)
    ]


def test_every_alarm_notifies_the_encrypted_alarm_topic(all_stacks) -> None:
    for stack in all_stacks:
        assert stack.props("AlarmTopic")["KmsMasterKeyId"] == {"Fn::GetAtt": ["ChatbotKey", "Arn"]}
        for alarm_id, alarm in _alarms(stack).items():
            assert alarm.get("AlarmActions") == [{"Ref": "AlarmTopic"}], alarm_id
            assert alarm.get("ActionsEnabled", True) is True, alarm_id


_METRIC_CALL = r"""(?:add_metric|single_metric)\(\s*name\s*=\s*["'](\w+)["']"""


def _emitted_metric_names() -> set[str]:
    names: set[str] = set()
    for directory in ("functions", "layers/security/chatbot_security"):
        for source in (REPO_ROOT / directory).rglob("*.py"):
            names |= set(
                re.findall(
                    r"""(?:add_metric|single_metric)\(\s*name\s*=\s*["'](\w+)["']""", source.read_text(encoding="utf-8")
                )
            )
    return names


def _watched(alarm: dict) -> dict:
    """The metric an alarm watches: its own, or the one its metric math expression reads."""
    if "Metrics" not in alarm:
        return alarm
    (stat,) = [query["MetricStat"] for query in alarm["Metrics"] if "MetricStat" in query]
    return stat["Metric"]


def test_custom_metric_alarms_watch_the_namespace_the_code_publishes_to(stack) -> None:
    from chatbot_security.platform.observability import METRICS_NAMESPACE

    custom = [alarm for alarm in _alarms(stack).values() if not str(_watched(alarm)["Namespace"]).startswith("AWS/")]
    assert custom
    for alarm in custom:
        watched = _watched(alarm)
        assert watched["Namespace"] == METRICS_NAMESPACE, alarm
        # Powertools adds the dimension service=$POWERTOOLS_SERVICE_NAME to every metric.
        assert watched["Dimensions"][: len(SERVICE_DIMENSION)] == SERVICE_DIMENSION, alarm
    for function_id in FUNCTIONS:
        assert stack.function_env(function_id)["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}


@pytest.mark.parametrize(
    "metric", ["AuthorizerDenied", "RateLimited", "CleanupFailures", "CleanupRunsCutShort", "StreamAuthorizerDenied"]
)
def test_custom_metric_alarm_watches_a_metric_the_code_emits(stack, metric: str) -> None:
    # An alarm on a metric nobody publishes never fires: a silent monitoring hole.
    assert _find(stack, "Chatbot", metric, SERVICE_DIMENSION)
    assert metric in _emitted_metric_names(), f"no add_metric(name={metric!r}) in functions/ or the layer"


def _spend_alarm(stack) -> dict:
    return _alarms(stack)["DailySpendAlarm"]


def test_alarm_on_the_deployments_estimated_daily_spend(stack) -> None:
    alarm = _spend_alarm(stack)
    metric = _watched(alarm)
    assert metric["MetricName"] == "ModelEstimatedCostUsd"
    assert metric["MetricName"] in _emitted_metric_names()
    (stat,) = [query for query in alarm["Metrics"] if "MetricStat" in query]
    assert stat["MetricStat"]["Period"] == 86400
    assert stat["MetricStat"]["Stat"] == "Sum"
    (expression,) = [query for query in alarm["Metrics"] if query.get("ReturnData")]
    assert expression["Expression"] == f"FILL({stat['Id']}, 0)"
    assert alarm["Threshold"] == {"Ref": "DailySpendAlarmUsd"}
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def _model_dimension(stack) -> object:
    (model,) = [d["Value"] for d in _watched(_spend_alarm(stack))["Dimensions"] if d["Name"] == "Model"]
    return model


def test_the_spend_alarm_watches_the_model_the_function_is_configured_with(make_stack: Callable) -> None:
    # The code publishes the cost with Model = MODEL_ID, or the provider's name when MODEL_ID is empty.
    explicit = make_stack(ModelId="amazon.nova-lite-v1:0")
    assert _model_dimension(explicit) == explicit.function_env("ChatFunction")["MODEL_ID"]
    default = make_stack()
    assert _model_dimension(default) == default.function_env("ChatFunction")["MODEL_ID"]
    echo = make_stack(ModelProvider="echo")
    assert _model_dimension(echo) == {"Ref": "ModelProvider"}
    assert echo.function_env("ChatFunction")["MODEL_ID"] == {"Ref": "ModelId"}


def test_the_model_dimension_is_the_one_the_code_publishes() -> None:
    from chatbot_security.conversation.token_usage import metric_model_name
    from chatbot_security.platform.settings import Settings

    assert metric_model_name(Settings.model_validate({"MODEL_PROVIDER": "echo"})) == "echo"
    configured = Settings.model_validate({"MODEL_PROVIDER": "bedrock", "MODEL_ID": "eu.anthropic.claude-haiku-5-5"})
    assert metric_model_name(configured) == "eu.anthropic.claude-haiku-5-5"


def test_alarm_on_authorizer_denials(stack) -> None:
    assert _find(stack, "Chatbot", "AuthorizerDenied", SERVICE_DIMENSION)


def test_alarm_on_rate_limited_requests(stack) -> None:
    assert _find(stack, "Chatbot", "RateLimited", SERVICE_DIMENSION)


def test_alarm_on_api_5xx(stack) -> None:
    assert _find(stack, "AWS/ApiGateway", "5xx", [{"Name": "ApiId", "Value": {"Ref": "ChatApi"}}])


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_alarm_on_function_errors_and_throttles(stack, function_id: str, metric: str) -> None:
    assert _find(stack, "AWS/Lambda", metric, [{"Name": "FunctionName", "Value": {"Ref": function_id}}])


def test_alarm_on_cleanup_failures(stack) -> None:
    assert _find(stack, "Chatbot", "CleanupFailures", SERVICE_DIMENSION)


def test_alarm_on_a_cleanup_backlog(stack) -> None:
    # Runs that stop at their deadline with ended sessions left, hour after hour: the cleanup falls behind
    # the retention promise although no run fails.
    (alarm,) = _find(stack, "Chatbot", "CleanupRunsCutShort", SERVICE_DIMENSION)
    assert alarm["Period"] == 3600
    assert alarm["Threshold"] == {"Ref": "CleanupBacklogAlarmThreshold"}
    assert stack.raw["Parameters"]["CleanupBacklogAlarmThreshold"]["MinValue"] == 1


def test_alarm_on_dead_letter_queue_depth(stack) -> None:
    (alarm,) = _find(
        stack,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["CleanupDeadLetterQueue", "QueueName"]}}],
    )
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_alarm_thresholds_are_parameters(stack) -> None:
    for alarm_id, alarm in _alarms(stack).items():
        if _watched(alarm)["Namespace"] == "AWS/SQS":
            continue  # any message in the dead-letter queue is an incident
        threshold = alarm["Threshold"]
        assert isinstance(threshold, dict), alarm_id
        assert threshold["Ref"] in stack.raw["Parameters"], alarm_id


def test_quiet_periods_do_not_raise_alarms(stack) -> None:
    for alarm_id, alarm in _alarms(stack).items():
        assert alarm.get("TreatMissingData") == "notBreaching", alarm_id


def test_only_this_accounts_alarms_may_publish_to_the_topic(stack) -> None:
    (policy,) = stack.of_type("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": "AlarmTopic"}]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_email_subscription_only_when_an_address_is_given(make_stack: Callable) -> None:
    assert not make_stack().of_type("AWS::SNS::Subscription")
    (subscription,) = make_stack(AlarmEmail="ops@example.com").of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
