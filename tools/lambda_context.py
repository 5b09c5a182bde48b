"""The one stand-in for the Lambda context object that the tests and the benchmarks hand to a handler:
the attributes Powertools and the handlers read."""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT_ARN_PREFIX = "arn:aws:lambda:eu-west-1:123456789012:function:"


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    @property
    def invoked_function_arn(self) -> str:
        return ACCOUNT_ARN_PREFIX + self.function_name

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
