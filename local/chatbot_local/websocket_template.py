"""What the local WebSocket API takes from template.yaml: the `AWS::ApiGatewayV2::Api` whose
`ProtocolType` is `WEBSOCKET`, with its route selection expression, its stage, its routes, the
Lambda REQUEST authorizer of `$connect` and the Lambda proxy integrations behind the routes.

Nothing is hand-copied: routes, identity sources and the functions behind them are read from the
`AWS::ApiGatewayV2::*` resources, so the local API follows the template as it changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatbot_local.cloudformation import Resolver, TemplateError
from chatbot_local.template import Template

API_TYPE = "AWS::ApiGatewayV2::Api"
ROUTE_TYPE = "AWS::ApiGatewayV2::Route"
INTEGRATION_TYPE = "AWS::ApiGatewayV2::Integration"
AUTHORIZER_TYPE = "AWS::ApiGatewayV2::Authorizer"
STAGE_TYPE = "AWS::ApiGatewayV2::Stage"
CONNECT, DISCONNECT, DEFAULT = "$connect", "$disconnect", "$default"

# `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations`
_INVOCATION_URI = re.compile(
    r"^arn:aws:apigateway:[^:]*:lambda:path/2015-03-31/functions/"
    r"arn:aws:lambda:[^:]*:[0-9]*:function:(?P<function>[A-Za-z0-9]+)/invocations$"
)
_BODY_SELECTION = re.compile(r"^\$request\.body\.(?P<path>[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)$")
# API Gateway's identity sources of a WebSocket REQUEST authorizer.
_IDENTITY_SOURCE = re.compile(r"^route\.request\.(?P<kind>header|querystring)\.(?P<name>[A-Za-z0-9._~-]+)$")


@dataclass(frozen=True)
class IdentitySource:
    kind: str  # "header" or "querystring"
    name: str


@dataclass(frozen=True)
class WebSocketAuthorizerSpec:
    logical_id: str
    function_id: str
    identity_sources: tuple[IdentitySource, ...]


@dataclass(frozen=True)
class WebSocketRouteSpec:
    route_key: str
    function_id: str | None  # None: a route without an integration (API Gateway answers for it)
    authorizer: WebSocketAuthorizerSpec | None = None
    # A route response is configured: the integration's `body` goes back to the client.
    two_way: bool = False


@dataclass(frozen=True)
class WebSocketApiSpec:
    logical_id: str
    stage: str
    selection_path: tuple[str, ...]  # `$request.body.action` -> ("action",)
    routes: Mapping[str, WebSocketRouteSpec]

    @property
    def function_ids(self) -> set[str]:
        ids = {route.function_id for route in self.routes.values() if route.function_id}
        return ids | {route.authorizer.function_id for route in self.routes.values() if route.authorizer}

    def select(self, body: Any) -> WebSocketRouteSpec | None:
        """The route of an inbound message: the selection expression's value, else `$default`."""
        value = body
        for key in self.selection_path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value in self.routes and not value.startswith("$"):
            return self.routes[value]
        return self.routes.get(DEFAULT)


def websocket_api(template: Template, resolver: Resolver) -> WebSocketApiSpec | None:
    """The template's WebSocket API, or None when it has none."""
    api_ids = [
        i
        for i in _present(template, resolver, API_TYPE)
        if template.properties(i, API_TYPE).get("ProtocolType") == "WEBSOCKET"
    ]
    if not api_ids:
        return None
    if len(api_ids) > 1:
        raise TemplateError(f"{template.path.name} defines more than one WebSocket API")
    api_id = api_ids[0]
    # Ref of a route's integration or authorizer resolves to its logical id, to find it again.
    own = {i: i for kind in (INTEGRATION_TYPE, AUTHORIZER_TYPE) for i in template.logical_ids(kind)}
    refs = {**resolver.refs, **own, api_id: api_id}
    resolver = Resolver(resolver.template, resolver.parameters, refs, resolver.attributes, resolver.pseudo)
    properties = resolver.resolve(template.properties(api_id, API_TYPE))
    expression = str(properties.get("RouteSelectionExpression", ""))
    match = _BODY_SELECTION.match(expression)
    if match is None:
        raise TemplateError(f"{api_id}: the local API supports `$request.body.<field>` route selection only")
    routes: dict[str, WebSocketRouteSpec] = {}
    for route_id in _present(template, resolver, ROUTE_TYPE):
        route = resolver.resolve(template.properties(route_id, ROUTE_TYPE))
        if route.get("ApiId") != api_id:
            continue
        key = str(route.get("RouteKey", ""))
        routes[key] = WebSocketRouteSpec(
            route_key=key,
            function_id=_target_function(template, resolver, route_id, route.get("Target")),
            authorizer=_authorizer(template, resolver, route_id, route),
            two_way=bool(route.get("RouteResponseSelectionExpression")),
        )
    for key, route in routes.items():
        if route.authorizer is not None and key != CONNECT:
            raise TemplateError(f"{api_id}: only $connect may have an authorizer (route {key})")
    return WebSocketApiSpec(api_id, _stage(template, resolver, api_id), tuple(match["path"].split(".")), routes)


def _present(template: Template, resolver: Resolver, resource_type: str) -> list[str]:
    """The resources of a type whose `Condition` (if any) holds with the local parameter values."""
    ids = template.logical_ids(resource_type)
    return [i for i in ids if (c := template.resources[i].get("Condition")) is None or resolver.condition(str(c))]


def _function_of(uri: Any, where: str) -> str:
    match = _INVOCATION_URI.match(str(uri))
    if match is None:
        raise TemplateError(f"{where}: the local API supports Lambda integrations with a function of the template")
    return match["function"]


def _target_function(template: Template, resolver: Resolver, route_id: str, target: Any) -> str | None:
    if target is None:
        return None
    prefix, _, integration_id = str(target).partition("/")
    if prefix != "integrations" or integration_id not in template.logical_ids(INTEGRATION_TYPE):
        raise TemplateError(f"{route_id}: Target must be integrations/<an integration of the template>")
    integration = resolver.resolve(template.properties(integration_id, INTEGRATION_TYPE))
    if integration.get("IntegrationType") != "AWS_PROXY":
        raise TemplateError(f"{integration_id}: the local API supports AWS_PROXY integrations only")
    return _function_of(integration.get("IntegrationUri"), integration_id)


def _authorizer(
    template: Template, resolver: Resolver, route_id: str, route: Mapping[str, Any]
) -> WebSocketAuthorizerSpec | None:
    kind = route.get("AuthorizationType", "NONE")
    if kind == "NONE":
        return None
    authorizer_id = str(route.get("AuthorizerId", ""))
    if kind != "CUSTOM" or authorizer_id not in template.logical_ids(AUTHORIZER_TYPE):
        raise TemplateError(f"{route_id}: the local API supports CUSTOM authorizers of the template only")
    authorizer = resolver.resolve(template.properties(authorizer_id, AUTHORIZER_TYPE))
    if authorizer.get("AuthorizerType") != "REQUEST":
        raise TemplateError(f"{authorizer_id}: a WebSocket authorizer is a REQUEST authorizer")
    sources = []
    for source in authorizer.get("IdentitySource") or []:
        match = _IDENTITY_SOURCE.match(str(source))
        if match is None:
            raise TemplateError(f"{authorizer_id}: identity source {source} is not supported locally")
        sources.append(IdentitySource(match["kind"], match["name"]))
    function_id = _function_of(authorizer.get("AuthorizerUri"), authorizer_id)
    return WebSocketAuthorizerSpec(authorizer_id, function_id, tuple(sources))


def _stages(template: Template, resolver: Resolver, api_id: str) -> list[dict[str, Any]]:
    stages = [resolver.resolve(template.properties(i, STAGE_TYPE)) for i in _present(template, resolver, STAGE_TYPE)]
    return [stage for stage in stages if stage.get("ApiId") == api_id]


def _stage(template: Template, resolver: Resolver, api_id: str) -> str:
    stages = _stages(template, resolver, api_id)
    return str(stages[0].get("StageName", "$default")) if stages else "$default"
