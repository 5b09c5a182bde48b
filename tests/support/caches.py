"""Forget what a warm Lambda container would remember between tests."""

from __future__ import annotations


def reset_caches() -> None:
    """Forget everything a warm container would remember."""
    from authorizer.handler import default_authenticator
    from chat.dependencies import _secrets_provider, default_conversations, default_ticket_store
    from chatbot_security.conversation.model_providers import _bedrock_runtime
    from chatbot_security.identity import edge
    from chatbot_security.platform import secrets
    from chatbot_security.platform.aws_clients import client, sdk_session
    from chatbot_security.platform.lean_settings import get_lean_settings
    from chatbot_security.platform.settings import get_settings
    from session_cleanup.handler import default_store
    from stream_authorizer.handler import default_ticket_store as stream_ticket_store

    for cached in (
        get_settings,
        client,
        sdk_session,
        default_conversations,
        default_ticket_store,
        _secrets_provider,
        default_authenticator,
        default_store,
        _bedrock_runtime,
        secrets.shared_secret_cache,
        edge.default_verifier,
        stream_ticket_store,
        get_lean_settings,
    ):
        cached.cache_clear()
