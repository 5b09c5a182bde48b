"""Every route of the chat API on the one resolver: importing a route module registers its routes, and
the handler and the OpenAPI generator import this module to have them all."""

from __future__ import annotations

from chat import api, data_rights_routes, stream_routes
from chat.resolver import app

ROUTE_MODULES = (api, data_rights_routes, stream_routes)

__all__ = ["ROUTE_MODULES", "app"]
