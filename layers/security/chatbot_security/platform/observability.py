"""Logger, Tracer and Metrics, created once and shared by every function.

The formatter redacts every field of every record (see :mod:`chatbot_security.privacy.redaction`); JSON
encoding escapes CR/LF and quotes, so user-controlled text cannot forge a log line or a field.

No setting may turn that off. The libraries' own loggers are held here at import, whatever
``POWERTOOLS_DEBUG``, ``LOG_LEVEL`` or ``AWS_LAMBDA_LOG_LEVEL`` say: their debug output (Powertools'
event handler writes the route's arguments, botocore the requests and responses, which hold message
content and secret values) is never produced, and their warnings and errors go through the same
redacting formatter. Any other record, whichever logger or handler it reaches, has its text
redacted when it is created.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from chatbot_security.privacy.redaction import redact_text, redact_value

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

# Loggers of the libraries the functions use. Powertools gives its own a plain stdout handler at DEBUG
# when it is imported with POWERTOOLS_DEBUG set, before this module runs: that handler goes too.
LIBRARY_LOGGERS = ("aws_lambda_powertools", "botocore", "boto3", "urllib3", "s3transfer", "aws_xray_sdk")
LIBRARY_LOG_LEVEL = logging.WARNING


def hold_library_loggers() -> None:
    """Library loggers: warnings and errors only, through the redacting formatter, never to the root."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RedactingFormatter())
    handler.setLevel(LIBRARY_LOG_LEVEL)  # also when a child logger (botocore.endpoint, ...) is set lower
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for existing in list(library.handlers):
            library.removeHandler(existing)
        library.addHandler(handler)
        library.setLevel(LIBRARY_LOG_LEVEL)
        library.propagate = False


_make_record = logging.getLogRecordFactory()


def _redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record of any other logger (the root handler of the Lambda runtime prints them as they
    are) leaves with its message and exception text redacted; ours are redacted by the formatter."""
    record = _make_record(*args, **kwargs)
    if record.name == logger.name:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: keep the template, never the arguments
        message = str(record.msg)
    record.msg, record.args = redact_text(message), None
    if record.exc_info:
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    return record


hold_library_loggers()
logging.setLogRecordFactory(_redacted_record)
metrics = Metrics(namespace=METRICS_NAMESPACE)
# X-Ray: handlers are traced with capture_response=False and capture_error=False, so no request
# body, response body or exception text ever lands in a trace; boto3 calls appear as subsegments
# (service, operation, table name), never with their payloads. Only http.client is patched here:
# patching botocore imports it, so chatbot_security.platform.aws_clients does that when it builds the first
# client (the authorizer's OIDC path never loads the SDK).
tracer = Tracer(patch_modules=["httplib"])
