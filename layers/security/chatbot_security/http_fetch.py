"""Small, bounded HTTPS GET for JSON documents (OIDC discovery and JWKS).

No redirects (a redirect could leave the configured host or downgrade to http), a hard timeout and
a size cap; the URL was validated by the settings before it gets here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

MAX_DOCUMENT_BYTES = 256 * 1024


class FetchError(Exception):
    """The document could not be fetched or is not a JSON object."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def fetch_json(url: str, timeout_seconds: float) -> dict[str, Any]:
    if not url.startswith(("https://", "http://")):
        raise FetchError("unsupported URL scheme")
    request = urllib.request.Request(url, headers={"Accept": "application/json"}, method="GET")  # noqa: S310 - scheme checked above
    try:
        # The scheme is checked above and the URL came from validated settings.
        with _opener.open(request, timeout=timeout_seconds) as response:  # nosec B310
            if response.status != 200:
                raise FetchError("unexpected status")
            raw = response.read(MAX_DOCUMENT_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        raise FetchError("fetch failed") from error
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise FetchError("document too large")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise FetchError("not JSON") from error
    if not isinstance(document, dict):
        raise FetchError("not a JSON object")
    return document
