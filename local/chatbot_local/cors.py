"""CORS the way an HTTP API's CorsConfiguration does it.

- A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) is answered by the
  gateway itself with 204 and no body, whatever the path, without calling the authorizer or a
  function. Only an allowed origin gets the Access-Control-Allow-* headers.
- On every other response, an allowed origin gets Access-Control-Allow-Origin (plus
  Expose-Headers and Allow-Credentials when configured); CORS headers returned by the function
  are dropped, since the gateway ignores them when CORS is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatbot_local.template import CorsSpec


def allowed_origins(environ: Mapping[str, str]) -> tuple[str, ...]:
    """`ALLOWED_ORIGINS` as a tuple (empty: no CORS at all)."""
    return tuple(item.strip() for item in environ.get("ALLOWED_ORIGINS", "").split(",") if item.strip())


@dataclass(frozen=True)
class CorsPolicy:
    spec: CorsSpec

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        for allowed in self.spec.allow_origins:
            if allowed in ("*", origin):
                return True
            if allowed in ("https://*", "http://*") and origin.startswith(allowed[:-1]):
                return True
        return False

    @staticmethod
    def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
        return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers

    def _allow_origin_value(self, origin: str) -> str:
        if "*" in self.spec.allow_origins and not self.spec.allow_credentials:
            return "*"
        return origin

    def preflight_headers(self, origin: str | None) -> dict[str, str]:
        if origin is None or not self.origin_allowed(origin):
            return {}
        headers = {"access-control-allow-origin": self._allow_origin_value(origin)}
        if self.spec.allow_methods:
            headers["access-control-allow-methods"] = ",".join(self.spec.allow_methods)
        if self.spec.allow_headers:
            headers["access-control-allow-headers"] = ",".join(self.spec.allow_headers)
        if self.spec.max_age is not None:
            headers["access-control-max-age"] = str(self.spec.max_age)
        if self.spec.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        return headers

    def response_headers(self, origin: str | None) -> dict[str, str]:
        if origin is None or not self.origin_allowed(origin):
            return {}
        headers = {"access-control-allow-origin": self._allow_origin_value(origin)}
        if self.spec.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.spec.expose_headers)
        if self.spec.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        return headers
