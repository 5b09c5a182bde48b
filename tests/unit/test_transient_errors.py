"""Which AWS failures are temporary (a 503 with Retry-After) and which stay a 500 (docs/resilience.md)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.retries import standard

from chat.http_responses import error_response
from chatbot_security.conversation.errors import ServiceUnavailableError
from chatbot_security.platform.transient_errors import THROTTLING_CODES, TRANSIENT_CODES, is_transient
from chatbot_security.storage.errors import ConflictError


def client_error(code: str, status: int = 400, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    response.update(extra)
    return ClientError(response, "AnyOperation")


def name_of(error: BaseException) -> str:
    code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
    return f"{type(error).__name__}:{code}" if code else type(error).__name__


def test_our_codes_cover_what_the_sdk_itself_retries() -> None:
    # If botocore learns new throttling codes, the SDK retries them and so should we call them temporary.
    assert set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES) <= THROTTLING_CODES
    assert set(standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES) <= TRANSIENT_CODES


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("InternalServerError", 500),
        client_error("KMSInternalException", 500),
        client_error("DependencyTimeoutException", 503),
        client_error("InternalServiceError", 500),
        client_error(
            "TransactionCanceledException", CancellationReasons=[{"Code": "None"}, {"Code": "ThrottlingError"}]
        ),
        client_error("TransactionCanceledException", CancellationReasons=[{"Code": "TransactionConflict"}]),
        ReadTimeoutError(endpoint_url="https://dynamodb.example"),
        ConnectTimeoutError(endpoint_url="https://kms.example"),
        EndpointConnectionError(endpoint_url="https://secretsmanager.example"),
        ConflictError("session kept changing"),
    ],
    ids=name_of,
)
def test_throttling_server_errors_timeouts_and_lasting_contention_are_temporary(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDeniedException"),
        client_error("ValidationException"),
        client_error("InvalidCiphertextException"),
        client_error("ResourceNotFoundException"),
        client_error("ConditionalCheckFailedException"),
        client_error("TransactionCanceledException", CancellationReasons=[{"Code": "ConditionalCheckFailed"}]),
        ParamValidationError(report="bad"),
        RuntimeError("a bug"),
        KeyError("missing"),
    ],
    ids=name_of,
)
def test_anything_else_is_not_temporary(error: Exception) -> None:
    assert not is_transient(error)


def test_a_temporary_cause_wrapped_by_a_library_still_counts() -> None:
    # Powertools' parameters raise GetParameterError(str(exc)) from the SDK's exception
    wrapped = RuntimeError("GetParameterError: throttled")
    wrapped.__cause__ = client_error("ThrottlingException")

    assert is_transient(wrapped)


def test_a_503_tells_the_client_when_to_retry() -> None:
    response = error_response(ServiceUnavailableError(), "request-1")

    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "2"
    assert '"code":"service_unavailable"' in response["body"]
    assert response["headers"]["Cache-Control"] == "no-store"
