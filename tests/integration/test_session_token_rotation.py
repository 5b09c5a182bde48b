"""Rule 3, end to end against Secrets Manager (moto): rotating the signing secret logs nobody out."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.caches import reset_caches

from authorizer.handler import lambda_handler
from tools.lambda_events import authorizer_event

pytestmark = pytest.mark.usefixtures("oidc_env")
OWN_SESSION = "GET /v1/sessions/{session_id}"


def new_session(lambda_context: Any) -> tuple[str, str]:
    body = InProcessApi(lambda_context).call("POST /v1/anonymous-sessions", None).body
    return body["session_id"], body["session_token"]


def allowed(lambda_context: Any, session_id: str, token: str) -> bool:
    event = authorizer_event(OWN_SESSION, f"Bearer {token}", session_id=session_id)
    return bool(lambda_handler(event, lambda_context)["isAuthorized"])


def rotate(aws: Any, value: str) -> None:
    """What the runbook does: a new AWSCURRENT; Secrets Manager moves the old one to AWSPREVIOUS."""
    boto3.client("secretsmanager").put_secret_value(SecretId=aws.secret_arns["SessionTokenSecret"], SecretString=value)
    reset_caches()  # the containers' secret cache expiring (15 minutes)


def test_tokens_signed_before_a_rotation_keep_working_until_they_expire(aws: Any, lambda_context: Any) -> None:
    session_id, token = new_session(lambda_context)
    rotate(aws, "a-new-signing-secret-value-of-the-first-rotation")
    assert allowed(lambda_context, session_id, token)
    newer_session, newer_token = new_session(lambda_context)
    assert allowed(lambda_context, newer_session, newer_token)


def test_a_second_rotation_retires_tokens_two_versions_old(aws: Any, lambda_context: Any) -> None:
    # Also the emergency procedure when the key leaked: rotate twice, every older token stops working.
    session_id, token = new_session(lambda_context)
    rotate(aws, "a-new-signing-secret-value-of-the-first-rotation")
    middle_session, middle_token = new_session(lambda_context)
    rotate(aws, "a-new-signing-secret-value-of-the-second-rotation")
    assert not allowed(lambda_context, session_id, token)
    assert allowed(lambda_context, middle_session, middle_token)
