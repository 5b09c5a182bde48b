"""HTTP API route selection: the most specific route wins, as in API Gateway.

A literal segment beats a `{param}` segment, which beats a greedy `{proxy+}`; a route with the
request's method beats `ANY`; `$default` catches what nothing else matches. Matching is case
sensitive and does not ignore a trailing slash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from chatbot_local.template import RouteSpec

_LITERAL, _PARAMETER, _GREEDY = 2, 1, 0


@dataclass(frozen=True)
class RouteMatch:
    route: RouteSpec
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class _CompiledRoute:
    route: RouteSpec
    segments: tuple[tuple[int, str], ...]

    def match(self, parts: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """(specificity score, path parameters) when the route matches the path segments."""
        parameters: dict[str, str] = {}
        for index, (kind, text) in enumerate(self.segments):
            if kind == _GREEDY:
                rest = parts[index:]
                parameters[text] = "/".join(rest)
                matched = bool(rest) and rest != [""]
                return (self._score(), parameters) if matched else None
            if index >= len(parts) or not _segment_matches(kind, text, parts[index]):
                return None
            if kind == _PARAMETER:
                parameters[text] = parts[index]
        if len(parts) != len(self.segments):
            return None
        return self._score(), parameters

    def _score(self) -> tuple[int, ...]:
        return tuple(kind for kind, _ in self.segments)


def _segment_matches(kind: int, text: str, part: str) -> bool:
    return part == text if kind == _LITERAL else part != ""


def _compile(route: RouteSpec) -> _CompiledRoute:
    segments = []
    for part in route.path.split("/")[1:]:
        if part.startswith("{") and part.endswith("+}"):
            segments.append((_GREEDY, part[1:-2]))
        elif part.startswith("{") and part.endswith("}"):
            segments.append((_PARAMETER, part[1:-1]))
        else:
            segments.append((_LITERAL, part))
    return _CompiledRoute(route, tuple(segments))


class RouteTable:
    def __init__(self, routes: Iterable[RouteSpec]) -> None:
        routes = list(routes)
        self._default = next((route for route in routes if route.path == "$default"), None)
        self._routes = [_compile(route) for route in routes if route.path.startswith("/")]

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        """The route for `method` and the (still percent-encoded) `raw_path`, or None (404)."""
        parts = [unquote(part) for part in raw_path.split("/")[1:]] if raw_path.startswith("/") else []
        best: tuple[tuple[tuple[int, ...], int], RouteMatch] | None = None
        for compiled in self._routes:
            if compiled.route.method not in (method, "ANY"):
                continue
            found = compiled.match(parts)
            if found is None:
                continue
            score, parameters = found
            rank = (score, 1 if compiled.route.method == method else 0)
            if best is None or rank > best[0]:
                best = (rank, RouteMatch(compiled.route, parameters))
        if best is not None:
            return best[1]
        if self._default is not None:
            return RouteMatch(self._default, {})
        return None
