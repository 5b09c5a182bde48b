"""Logger, Tracer and Metrics, created once and shared by every function.

The formatter redacts every field of every record (see :mod:`chatbot_security.redaction`); JSON
encoding escapes CR/LF and quotes, so user-controlled text cannot forge a log line or a field.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from chatbot_security.redaction import redact_value

METRICS_NAMESPACE = "Chatbot"
# Keys Powertools fills itself from trusted sources; everything else is redacted.
_TRUSTED_KEYS = frozenset(
    {
        "level",
        "location",
        "timestamp",
        "service",
        "xray_trace_id",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "sampling_rate",
        "correlation_id",
    }
)


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: Any) -> str:
        safe = {key: value if key in _TRUSTED_KEYS else redact_value(value) for key, value in log.items()}
        return super().serialize(safe)


logger = Logger(logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE)
# X-Ray: handlers are traced with capture_response=False and capture_error=False, so no request
# body, response body or exception text ever lands in a trace; boto3 calls appear as subsegments
# (service, operation, table name), never with their payloads. Only http.client is patched here:
# patching botocore imports it, so chatbot_security.aws_clients does that when it builds the first
# client (the authorizer's OIDC path never loads the SDK).
tracer = Tracer(patch_modules=["httplib"])
