"""The environment the handlers run with locally, and the checks made before anything starts.

Precedence, highest first:
1. what the user exported (any docs/contract.md section 4 variable wins);
2. the local defaults (`ALLOW_ANONYMOUS=true`, `MODEL_PROVIDER=echo`, `ALLOWED_ORIGINS` = the demo
   page's origins, the development issuer, quiet Powertools);
3. the template's own `Globals.Function.Environment`, resolved with the template's parameter
   defaults, so every other setting has its deployed default.
Resource names (`TABLE_NAME`, `KMS_KEY_ID`, the secret ARNs) always point at moto, and the AWS
SDK can only reach moto: the endpoint, dummy credentials, no profile, no metadata service.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, MutableMapping
from urllib.parse import urlsplit

from chatbot_local.aws import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    KEY_ID,
    TABLE_ID,
    LocalResources,
    known_regions,
)
from chatbot_local.cloudformation import Resolver
from chatbot_local.issuer import AUDIENCE
from chatbot_local.template import SERVERLESS_FUNCTION, Template

MODEL_PROVIDERS = ("echo", "bedrock", "openai")
DEFAULT_REGION = "us-east-1"

LOCAL_DEFAULTS = {
    "ALLOW_ANONYMOUS": "true",
    "MODEL_PROVIDER": "echo",
    # Sized for a developer reloading the demo page (deployed default: 10 per source IP and hour).
    # Only the default is raised: loopback addresses are counted like any other.
    "ANON_SESSIONS_PER_HOUR": "500",
    # Local runs only: lets OIDC_ISSUER be http://127.0.0.1:... (the template never sets it).
    "ALLOW_LOOPBACK_ISSUER": "true",
    # One line per request from the gateway; the functions' INFO logs and metrics only on request.
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

ORIGIN_SECRET_ID = "EdgeOriginSecret"  # noqa: S105 - a logical id  # nosec B105
ORIGIN_HEADER = "X-Origin-Verify"

# (environment variable, logical id of the resource it names)
RESOURCE_VARIABLES = (
    ("TABLE_NAME", TABLE_ID),
    ("SESSION_TOKEN_SECRET_ARN", "SessionTokenSecret"),
    ("USER_ID_PEPPER_SECRET_ARN", "UserIdPepperSecret"),
)

# Settings of the AWS SDK that could send a call anywhere but moto, or use real credentials.
_AWS_REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)


class ConfigError(Exception):
    """A configuration mistake the user can fix; reported as one line, exit status 2."""


def region_of(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def local_origins(web_port: int) -> str:
    return f"http://127.0.0.1:{web_port},http://localhost:{web_port}"


def uses_dev_issuer(environ: Mapping[str, str]) -> bool:
    return not environ.get("OIDC_ISSUER", "").strip()


def apply_local_defaults(environ: MutableMapping[str, str], web_port: int) -> None:
    """Layer 2 of the precedence: only fills what the user did not set."""
    for name, value in {**LOCAL_DEFAULTS, "ALLOWED_ORIGINS": local_origins(web_port)}.items():
        environ.setdefault(name, value)
    # The template's parameter is AuthorizerCacheTtlSeconds; accept the shorter name as well.
    if "AUTHORIZER_CACHE_TTL" in environ:
        environ.setdefault("AUTHORIZER_CACHE_TTL_SECONDS", environ["AUTHORIZER_CACHE_TTL"])


def check(environ: Mapping[str, str]) -> None:
    """The mistakes worth catching before starting anything (the full check runs on the settings)."""
    provider = environ.get("MODEL_PROVIDER", "")
    if provider not in MODEL_PROVIDERS:
        raise ConfigError(f"MODEL_PROVIDER must be one of {', '.join(MODEL_PROVIDERS)} (got {provider!r})")
    issuer = environ.get("OIDC_ISSUER", "").strip()
    if issuer:
        parts = urlsplit(issuer)
        secure = parts.scheme == "https" and bool(parts.hostname)
        local = parts.scheme == "http" and _is_loopback(parts.hostname)
        if not (secure or local) or parts.username or parts.query or parts.fragment:
            raise ConfigError(f"OIDC_ISSUER must be an https URL (or http on a loopback host): got {issuer!r}")
    region = region_of(environ)
    if region != DEFAULT_REGION and region not in known_regions():  # moto fails with a traceback on others
        name = "AWS_REGION" if environ.get("AWS_REGION") else "AWS_DEFAULT_REGION"
        raise ConfigError(f"{name} must be an AWS region such as eu-west-1 (got {region!r})")
    for origin in filter(None, (item.strip() for item in environ.get("ALLOWED_ORIGINS", "").split(","))):
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            raise ConfigError(f"ALLOWED_ORIGINS takes exact origins such as http://localhost:8080 (got {origin!r})")


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def use_dev_issuer(environ: MutableMapping[str, str], issuer_url: str) -> None:
    environ["OIDC_ISSUER"] = issuer_url
    environ["OIDC_AUDIENCE"] = AUDIENCE
    environ.pop("OIDC_JWKS_URL", None)


def isolate_aws(environ: MutableMapping[str, str], endpoint_url: str, region: str) -> None:
    """Point every AWS SDK call of this process at moto, with credentials that only moto takes."""
    for name in list(environ):
        if name in _AWS_REMOVED or name.startswith("AWS_ENDPOINT_URL_"):
            del environ[name]
    environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    # Loopback calls (moto, the development issuer) never go through a proxy.
    for name in ("NO_PROXY", "no_proxy"):
        current = [item for item in environ.get(name, "").split(",") if item]
        environ[name] = ",".join(dict.fromkeys([*current, "127.0.0.1", "localhost", "::1"]))


def apply_resources(environ: MutableMapping[str, str], template: Template, resources: LocalResources) -> None:
    """Layer 3, then the resource names (always moto's)."""
    resolver = template.resolver(
        environ,
        resources.region,
        refs=resources.refs(),
        attributes={(KEY_ID, "Arn"): resources.key_arn},
    )
    globals_function = (template.document.get("Globals") or {}).get("Function") or {}
    variables = resolver.resolve((globals_function.get("Environment") or {}).get("Variables") or {})
    for name, value in variables.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value) != "":
            environ.setdefault(name, str(value))
    for name, logical_id in RESOURCE_VARIABLES:
        environ[name] = resources.refs()[logical_id]
    environ["KMS_KEY_ID"] = resources.key_arn
    if "ModelApiKeySecret" in resources.secret_arns:
        environ["MODEL_API_KEY_SECRET_ARN"] = resources.secret_arns["ModelApiKeySecret"]
    # EDGE_PROTECTION=waf: the template creates the origin secret, and the handlers check its value.
    if ORIGIN_SECRET_ID in resources.secret_arns:
        environ["EDGE_ORIGIN_SECRET_ARN"] = resources.secret_arns[ORIGIN_SECRET_ID]
    else:
        environ.pop("EDGE_ORIGIN_SECRET_ARN", None)


def edge_enabled(environ: Mapping[str, str]) -> bool:
    return environ.get("EDGE_PROTECTION", "").strip() == "waf"


def use_stream_endpoints(environ: MutableMapping[str, str], host: str, ws_port: int) -> None:
    """The WebSocket API's addresses: the ticket's URL (`STREAM_URL`), the management API the
    functions post frames to (`STREAM_CALLBACK_URL`) and Lambda's invoke (`AWS_ENDPOINT_URL_LAMBDA`,
    the AWS SDK's endpoint for one service), all served by the local WebSocket API's port."""
    environ["STREAM_URL"] = f"ws://{host}:{ws_port}"
    environ["STREAM_CALLBACK_URL"] = f"http://{host}:{ws_port}"
    environ["AWS_ENDPOINT_URL_LAMBDA"] = f"http://{host}:{ws_port}"


def apply_function_variables(environ: MutableMapping[str, str], template: Template, resolver: Resolver) -> None:
    """Each function's own `Environment.Variables`, only where nothing is set yet (one process runs
    every function, so they share one environment: the first function naming a variable wins)."""
    for logical_id in template.logical_ids(SERVERLESS_FUNCTION):
        block = (template.properties(logical_id, SERVERLESS_FUNCTION).get("Environment") or {}).get("Variables")
        variables = resolver.resolve(block or {})
        for name, value in variables.items():
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value) != "":
                environ.setdefault(name, str(value))
