"""Authorizer entry point: allow with the principal as context, or deny. It never raises."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from authorizer.decision import Authenticator, authorize
from chatbot_security.identity import session_tokens
from chatbot_security.identity.edge import OriginVerifier, container_verifier
from chatbot_security.identity.jwks import JwksCache
from chatbot_security.identity.oidc import AccessTokenVerifier
from chatbot_security.identity.token_errors import TokenRejected
from chatbot_security.platform.authorizer_settings import get_authorizer_settings
from chatbot_security.platform.invocation import observed_handler
from chatbot_security.platform.observability import METRICS_NAMESPACE, logger, metrics
from chatbot_security.platform.secrets import CURRENT, PREVIOUS, SecretCache, shared_secret_cache

DENY: dict[str, Any] = {"isAuthorized": False}


def session_token_keys(secrets: SecretCache, secret_arn: str | None) -> Iterator[bytes]:
    """The session-token keys, current secret version first.

    Lazy: the previous version (AWSPREVIOUS, kept for rotations) is only read when a token does not
    verify with the current one, so a cold container reads one secret version for a current token.
    """
    if not secret_arn:
        return
    for stage in (CURRENT, PREVIOUS):
        value = secrets.get(secret_arn, stage)
        if value:
            yield session_tokens.derive_key(value)


@functools.cache
def default_authenticator() -> Authenticator:
    settings = get_authorizer_settings()
    keys = functools.partial(session_token_keys, shared_secret_cache(), settings.session_token_secret_arn)
    return Authenticator(settings, AccessTokenVerifier(settings, JwksCache(settings)), keys)


@functools.cache
def default_origin_verifier() -> OriginVerifier:
    """The container's origin check (edge on): its own cache, so a retired value expires after the configured age."""
    return container_verifier(get_authorizer_settings())


# Logger keys, the "## lambda_handler" trace subsegment and the metrics flush, at a fixed cost of a few
# microseconds per request (chatbot_security.platform.invocation).
@observed_handler("requestContext", "requestId")
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    authenticator: Authenticator | None = None,
    origin: OriginVerifier | None = None,
) -> dict[str, Any]:
    try:
        settings = get_authorizer_settings()
        if origin is None and settings.edge_enabled:
            origin = default_origin_verifier()
        principal = authorize(event, authenticator or default_authenticator(), settings, origin)
    except TokenRejected as rejection:
        return _deny(rejection.reason)
    except Exception as error:  # deny, never raise: an exception would be a 500 and inflate error metrics
        return _deny("internal_error", error_type=type(error).__name__)
    logger.debug("allowed", extra={"principal_kind": principal.kind})
    return {"isAuthorized": True, "context": principal.to_authorizer_context()}


def _deny(reason: str, **extra: str) -> dict[str, Any]:
    logger.info("denied", extra={"reason": reason, **extra})
    metrics.add_metric(name="AuthorizerDenied", unit=MetricUnit.Count, value=1)
    # The same denial by reason code (a small, code-defined set), for dashboards and investigations.
    dimensions = {"service": metrics.service or "chatbot", "reason": reason}
    # Powertools' single_metric prints even with POWERTOOLS_METRICS_DISABLED; a provider's flush does not.
    by_reason = AmazonCloudWatchEMFProvider(namespace=METRICS_NAMESPACE)
    for name, value in dimensions.items():
        by_reason.add_dimension(name=name, value=value)
    by_reason.add_metric(name="AuthorizerDeniedByReason", unit=MetricUnit.Count, value=1)
    by_reason.flush_metrics()
    return dict(DENY)
