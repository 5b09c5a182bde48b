"""Which failures of the AWS services we call are temporary (docs/resilience.md).

A call to DynamoDB, KMS or Secrets Manager that is still throttled, still failing with a server
error, or still timing out after the SDK's own retries (``aws_clients``: standard mode, 3 attempts)
is a temporary unavailability, not a bug: the chat function answers it with 503 and ``Retry-After``,
and a client may repeat the request (with the same ``client_message_id`` for a message). Everything
else that escapes (access denied, a validation error, a ciphertext that does not open, a bug) stays
a 500.

The codes are the ones botocore's standard retry mode itself treats as throttling or transient, plus
DynamoDB's per-item cancellation reasons of a transaction; a test checks they still cover botocore's.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
# CancellationReasons of a TransactWriteItems that DynamoDB throttled or that kept conflicting.
TRANSIENT_CANCELLATION_CODES = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded", "TransactionConflict"}
)
MAX_CAUSES = 8


class TemporaryFailure(Exception):
    """Raised by our own code for a failure that repeating the request may fix (e.g. a conditional
    write that kept losing to concurrent writers); data access subclasses it."""


def is_transient(error: BaseException) -> bool:
    """True when ``error`` (or what caused it, e.g. inside Powertools' GetParameterError) is temporary."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < MAX_CAUSES:
        if _transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _transient_itself(error: BaseException) -> bool:
    if isinstance(error, BotoConnectionError | HTTPClientError):  # timeouts, refused or dropped connections
        return True
    if isinstance(error, TemporaryFailure):  # e.g. a conditional write that kept losing to concurrent writers
        return True
    if not isinstance(error, ClientError):
        return False
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in THROTTLING_CODES or code in TRANSIENT_CODES:
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons") or []
        return any(isinstance(r, dict) and r.get("Code") in TRANSIENT_CANCELLATION_CODES for r in reasons)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500
