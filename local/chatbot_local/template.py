"""What the local API takes from template.yaml: functions, layers, the HTTP API and its routes.

Nothing here is hand-copied from the template: routes, the authorizer (identity sources, cache
TTL, payload format), CORS settings, throttling and the code location of each function are read
from the SAM resources, so the local API follows the template as it changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot_local.cloudformation import Resolver, TemplateError, load_template

STACK_NAME = "chatbot-local"
ACCOUNT_ID = "123456789012"
DEFAULT_AUTHORIZER_CACHE_TTL = 300
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_HTTP_API = "AWS::Serverless::HttpApi"
SERVERLESS_LAYER = "AWS::Serverless::LayerVersion"

_IDENTITY_PREFIXES = {
    "Headers": "$request.header.",
    "QueryStrings": "$request.querystring.",
    "Context": "$context.",
    "StageVariables": "$stageVariables.",
}
_FUNCTION_ARN = re.compile(r"^arn:aws:lambda:[^:]*:[0-9]*:function:([A-Za-z0-9]+)$")


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    function_name: str = ""

    @property
    def module_name(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    function_id: str
    authorizer: str | None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class AuthorizerSpec:
    name: str
    function_id: str
    identity_sources: tuple[str, ...]
    ttl_seconds: int
    simple_responses: bool
    payload_version: str


@dataclass(frozen=True)
class CorsSpec:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class ThrottleSpec:
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class HttpApiSpec:
    logical_id: str
    routes: tuple[RouteSpec, ...]
    authorizers: Mapping[str, AuthorizerSpec]
    cors: CorsSpec | None
    default_throttle: ThrottleSpec | None = None
    route_throttles: Mapping[str, ThrottleSpec] = field(default_factory=dict)


def screaming_snake(name: str) -> str:
    """`AllowedOrigins` -> `ALLOWED_ORIGINS`, `OidcIssuer` -> `OIDC_ISSUER`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


class Template:
    """template.yaml, read once; every property is resolved on demand with a Resolver."""

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.root = path.parent
        self.document = document

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(path, load_template(path))

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.document["Resources"]
        return resources

    def resource(self, logical_id: str, resource_type: str) -> dict[str, Any]:
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict) or resource.get("Type") != resource_type:
            raise TemplateError(f"{self.path.name} has no {resource_type} named {logical_id}")
        return resource

    def properties(self, logical_id: str, resource_type: str) -> dict[str, Any]:
        properties = self.resource(logical_id, resource_type).get("Properties") or {}
        if not isinstance(properties, dict):
            raise TemplateError(f"{logical_id}: Properties must be a mapping")
        return properties

    def logical_ids(self, resource_type: str) -> list[str]:
        return [
            name
            for name, body in self.resources.items()
            if isinstance(body, dict) and body.get("Type") == resource_type
        ]

    # Parameters -------------------------------------------------------------------------------

    def parameter_environment_names(self) -> dict[str, str]:
        """Which environment variable each parameter feeds (`{"AllowedOrigins": "ALLOWED_ORIGINS"}`).

        Taken from the functions' `Environment.Variables` (`NAME: !Ref Parameter`); a parameter no
        function reads maps to its own name in SCREAMING_SNAKE_CASE.
        """
        parameters = self.document.get("Parameters") or {}
        names = {parameter: screaming_snake(parameter) for parameter in parameters}
        for variables in self._environment_blocks():
            for variable, value in variables.items():
                if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
                    names[value["Ref"]] = variable
        return names

    def parameter_values(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """Each parameter's default, overridden by the environment variable it feeds when set."""
        parameters = self.document.get("Parameters") or {}
        env_names = self.parameter_environment_names()
        values: dict[str, Any] = {}
        for name, raw in parameters.items():
            definition = raw if isinstance(raw, dict) else {}
            value = environ.get(env_names[name])
            text = value if value is not None else str(definition.get("Default", ""))
            is_list = str(definition.get("Type", "")).startswith(("CommaDelimitedList", "List<"))
            values[name] = [item.strip() for item in text.split(",") if item.strip()] if is_list else text
        return values

    def resolver(
        self,
        environ: Mapping[str, str],
        region: str,
        refs: Mapping[str, str] | None = None,
        attributes: Mapping[tuple[str, str], str] | None = None,
    ) -> Resolver:
        pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": "",
        }
        known = {
            (logical_id, "Arn"): f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{logical_id}"
            for logical_id in self.logical_ids(SERVERLESS_FUNCTION)
        }
        known.update(attributes or {})
        return Resolver(self.document, self.parameter_values(environ), refs or {}, known, pseudo)

    # Functions and layers ---------------------------------------------------------------------

    def function(self, logical_id: str, resolver: Resolver) -> FunctionSpec:
        properties = self._function_properties(logical_id, resolver)
        code_uri, handler = properties.get("CodeUri"), properties.get("Handler")
        if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
            raise TemplateError(f"{logical_id}: CodeUri and Handler (module.function) are required")
        return FunctionSpec(
            logical_id=logical_id,
            code_dir=(self.root / code_uri).resolve(),
            handler=handler,
            timeout_seconds=int(properties.get("Timeout", DEFAULT_TIMEOUT_SECONDS)),
            memory_mb=int(properties.get("MemorySize", DEFAULT_MEMORY_MB)),
            function_name=str(properties.get("FunctionName") or logical_id),
        )

    def layer_dirs(self, resolver: Resolver) -> list[Path]:
        """The local folders of the layers the functions use (SAM `ContentUri`)."""
        folders: list[Path] = []
        for logical_id in self.logical_ids(SERVERLESS_LAYER):
            content_uri = resolver.resolve(self.properties(logical_id, SERVERLESS_LAYER).get("ContentUri"))
            if isinstance(content_uri, str):
                folders.append((self.root / content_uri).resolve())
        return folders

    def schedule_targets(self) -> list[str]:
        """Functions invoked by an EventBridge schedule (the cleanup function)."""
        targets = []
        for logical_id in self.logical_ids(SERVERLESS_FUNCTION):
            events = self.properties(logical_id, SERVERLESS_FUNCTION).get("Events") or {}
            if any(isinstance(e, dict) and e.get("Type") in ("Schedule", "ScheduleV2") for e in events.values()):
                targets.append(logical_id)
        return targets

    def _function_properties(self, logical_id: str, resolver: Resolver) -> dict[str, Any]:
        globals_section = self.document.get("Globals") or {}
        merged = dict(globals_section.get("Function") or {})
        merged.update(self.properties(logical_id, SERVERLESS_FUNCTION))
        resolved = resolver.resolve(merged)
        if not isinstance(resolved, dict):
            raise TemplateError(f"{logical_id}: Properties must be a mapping")
        return resolved

    def _environment_blocks(self) -> list[dict[str, Any]]:
        blocks = []
        global_function = (self.document.get("Globals") or {}).get("Function") or {}
        candidates = [global_function] + [
            self.properties(i, SERVERLESS_FUNCTION) for i in self.logical_ids(SERVERLESS_FUNCTION)
        ]
        for properties in candidates:
            variables = (properties.get("Environment") or {}).get("Variables")
            if isinstance(variables, dict):
                blocks.append(variables)
        return blocks

    # The HTTP API -----------------------------------------------------------------------------

    def http_api(
        self, resolver: Resolver, allowed_origins: tuple[str, ...], logical_id: str | None = None
    ) -> HttpApiSpec:
        """Routes, authorizers, CORS and throttling of the HTTP API.

        `allowed_origins` is `ALLOWED_ORIGINS`: the origins always come from it (empty: no CORS),
        the other CORS settings from the API's `CorsConfiguration`.
        """
        api_ids = self.logical_ids(SERVERLESS_HTTP_API)
        if logical_id is None:
            if len(api_ids) != 1:
                raise TemplateError(f"{self.path.name} must define exactly one {SERVERLESS_HTTP_API}")
            logical_id = api_ids[0]
        properties = resolver.resolve(self.properties(logical_id, SERVERLESS_HTTP_API))
        auth = properties.get("Auth") or {}
        authorizers = {
            name: _authorizer(name, definition) for name, definition in (auth.get("Authorizers") or {}).items()
        }
        routes = self._routes(logical_id, auth.get("DefaultAuthorizer"), resolver)
        for route in routes:
            if route.authorizer is not None and route.authorizer not in authorizers:
                raise TemplateError(f"route {route.route_key} uses unknown authorizer {route.authorizer}")
        cors = _cors(properties.get("CorsConfiguration"), allowed_origins, routes)
        default_settings = properties.get("DefaultRouteSettings") or {}
        route_settings = properties.get("RouteSettings") or {}
        return HttpApiSpec(
            logical_id=logical_id,
            routes=tuple(routes),
            authorizers=authorizers,
            cors=cors,
            default_throttle=_throttle(default_settings),
            route_throttles={key: spec for key, value in route_settings.items() if (spec := _throttle(value))},
        )

    def _routes(self, api_id: str, default_authorizer: Any, resolver: Resolver) -> list[RouteSpec]:
        routes = []
        for function_id in self.logical_ids(SERVERLESS_FUNCTION):
            events = self.properties(function_id, SERVERLESS_FUNCTION).get("Events") or {}
            for event in events.values():
                if not isinstance(event, dict) or event.get("Type") != "HttpApi":
                    continue
                raw = event.get("Properties") or {}
                if "ApiId" in raw and raw["ApiId"] != {"Ref": api_id}:
                    continue
                properties = resolver.resolve(raw)
                method = str(properties.get("Method", "ANY")).upper()
                authorizer = (properties.get("Auth") or {}).get("Authorizer", default_authorizer)
                routes.append(
                    RouteSpec(
                        method="ANY" if method in ("*", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
                        path=str(properties.get("Path", "$default")),
                        function_id=function_id,
                        authorizer=None if authorizer in (None, "NONE") else str(authorizer),
                    )
                )
        if not routes:
            raise TemplateError(f"no HttpApi events reference {api_id}")
        return routes


def _authorizer(name: str, definition: Any) -> AuthorizerSpec:
    if not isinstance(definition, dict) or "FunctionArn" not in definition:
        raise TemplateError(f"authorizer {name}: only Lambda authorizers are supported locally")
    match = _FUNCTION_ARN.match(str(definition["FunctionArn"]))
    if match is None:
        raise TemplateError(f"authorizer {name}: FunctionArn must be the Arn of a function of the template")
    identity = definition.get("Identity") or {}
    sources = tuple(
        prefix + str(item) for key, prefix in _IDENTITY_PREFIXES.items() for item in identity.get(key) or []
    )
    ttl = int(identity.get("ReauthorizeEvery", DEFAULT_AUTHORIZER_CACHE_TTL))
    return AuthorizerSpec(
        name=name,
        function_id=match.group(1),
        # API Gateway caches only when the authorizer has identity sources.
        identity_sources=sources,
        ttl_seconds=ttl if sources else 0,
        simple_responses=bool(definition.get("EnableSimpleResponses", False)),
        payload_version=str(definition.get("AuthorizerPayloadFormatVersion", "2.0")),
    )


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(str(item) for item in value or ())


def _cors(configuration: Any, allowed_origins: tuple[str, ...], routes: list[RouteSpec]) -> CorsSpec | None:
    if not allowed_origins:
        return None
    if not isinstance(configuration, dict):
        # CORS is on locally (ALLOWED_ORIGINS is set) but the template's settings are conditional
        # or absent: fall back to what the routes need.
        methods = sorted({route.method for route in routes if route.method != "ANY"})
        return CorsSpec(allowed_origins, tuple(methods), ("authorization", "content-type"))
    max_age = configuration.get("MaxAge")
    return CorsSpec(
        allow_origins=allowed_origins,
        allow_methods=tuple(item.upper() for item in _strings(configuration.get("AllowMethods"))),
        allow_headers=tuple(item.lower() for item in _strings(configuration.get("AllowHeaders"))),
        expose_headers=tuple(item.lower() for item in _strings(configuration.get("ExposeHeaders"))),
        max_age=None if max_age is None else int(max_age),
        allow_credentials=str(configuration.get("AllowCredentials", False)).lower() == "true",
    )


def _throttle(settings: Any) -> ThrottleSpec | None:
    if not isinstance(settings, dict):
        return None
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None and burst is None:
        return None
    rate_value = float(rate) if rate is not None else float(burst or 0)
    burst_value = int(burst) if burst is not None else max(1, int(rate_value))
    return ThrottleSpec(rate_limit=rate_value, burst_limit=burst_value)
