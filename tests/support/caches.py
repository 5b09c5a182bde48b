"""Forget what a warm Lambda container would remember between tests."""

from __future__ import annotations


def reset_caches() -> None:
    """Forget everything a warm container would remember."""
    from authorizer.handler import default_authenticator, default_origin_verifier
    from chat.dependencies import default_conversations, default_quotas, default_ticket_store
    from chatbot_security.conversation.model_providers.configured import _secrets_provider
    from chatbot_security.identity import edge
    from chatbot_security.platform import secrets
    from chatbot_security.platform.authorizer_settings import get_authorizer_settings
    from chatbot_security.platform.aws_clients import client, sdk_session, single_attempt_client
    from chatbot_security.platform.lean_settings import get_lean_settings
    from chatbot_security.platform.settings import get_settings
    from session_cleanup.handler import default_store
    from stream import dependencies as stream_dependencies
    from stream.engine import default_engine as default_stream_engine
    from stream.worker import default_worker
    from stream_authorizer.handler import default_ticket_store as stream_ticket_store

    for cached in (
        get_settings,
        client,
        sdk_session,
        default_conversations,
        default_quotas,
        default_ticket_store,
        _secrets_provider,
        default_authenticator,
        default_origin_verifier,
        get_authorizer_settings,
        default_store,
        single_attempt_client,
        secrets.shared_secret_cache,
        edge.default_verifier,
        stream_dependencies.default_connections,
        stream_dependencies.default_callbacks,
        stream_dependencies.default_handoff,
        stream_dependencies.management_client,
        default_stream_engine,
        default_worker,
        stream_ticket_store,
        get_lean_settings,
    ):
        cached.cache_clear()
