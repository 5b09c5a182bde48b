"""Settings: one validated model; insecure issuer URLs are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chatbot_security.platform.settings import Settings, get_settings


def test_defaults_match_the_design() -> None:
    settings = Settings.model_validate({})
    assert settings.oidc_issuer is None
    assert settings.oidc_roles_claim == "cognito:groups"
    assert settings.admin_role == "admin"
    assert settings.admin_require_mfa is True
    assert settings.allow_anonymous is False
    assert settings.session_ttl_seconds == 86400
    assert settings.session_idle_seconds == 1800
    assert settings.max_message_chars == 4000
    assert settings.max_body_bytes == 16384
    assert settings.max_messages_per_session == 200
    assert settings.rate_limit_per_minute == 20
    assert settings.anon_sessions_per_hour == 10
    assert settings.model_max_tokens == 1024
    assert settings.model_timeout_seconds == 30
    assert settings.pii_masking is True
    assert settings.oidc_algorithms == ("RS256",)


def test_comma_lists_are_split_and_trimmed() -> None:
    settings = Settings.model_validate({"OIDC_AUDIENCE": " a, b ,,c", "ALLOWED_ORIGINS": ""})
    assert settings.oidc_audience == ("a", "b", "c")
    assert settings.allowed_origins == ()


@pytest.mark.parametrize(
    "url", ["http://issuer.example.test", "ftp://x", "https://user:pw@issuer.example.test", "issuer"]
)
def test_issuer_must_be_https(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"OIDC_ISSUER": url})


def test_loopback_http_issuer_needs_the_local_flag() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"OIDC_ISSUER": "http://127.0.0.1:9000"})
    settings = Settings.model_validate({"OIDC_ISSUER": "http://127.0.0.1:9000", "ALLOW_LOOPBACK_ISSUER": "true"})
    assert settings.oidc_issuer is not None


def test_loopback_flag_does_not_open_http_to_other_hosts() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"OIDC_ISSUER": "http://issuer.example.test", "ALLOW_LOOPBACK_ISSUER": "true"})


@pytest.mark.parametrize("algorithms", ["HS256", "none", "RS256,HS512", ""])
def test_only_asymmetric_algorithms_are_accepted(algorithms: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"OIDC_ALGORITHMS": algorithms})


def test_unknown_model_provider_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"MODEL_PROVIDER": "gpt"})


def test_settings_are_read_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "123")
    assert get_settings().max_message_chars == 123
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "456")
    assert get_settings().max_message_chars == 123


def test_require_names_the_missing_variable() -> None:
    with pytest.raises(RuntimeError, match="TABLE_NAME"):
        Settings.model_validate({}).require("table_name")


def test_allowed_origins_variable_still_takes_any_exact_origin() -> None:
    # Only the deployed template parameter is held to https: local and test runs use plain http
    origins = "http://127.0.0.1:8080,http://app.example.test,https://app.example.com"
    settings = Settings.model_validate({"ALLOWED_ORIGINS": origins})
    assert settings.allowed_origins == ("http://127.0.0.1:8080", "http://app.example.test", "https://app.example.com")


def test_required_scopes_are_space_separated_and_empty_by_default() -> None:
    assert Settings.model_validate({}).oidc_required_scopes == ()
    settings = Settings.model_validate({"OIDC_REQUIRED_SCOPES": "  chat:read   chat:write "})
    assert settings.oidc_required_scopes == ("chat:read", "chat:write")


@pytest.mark.parametrize(
    "host", ["localhost", "issuer.localhost", "a.b.localhost", "ISSUER.LOCALHOST", "127.0.0.2", "[::1]"]
)
def test_loopback_names_include_the_localhost_domain(host: str) -> None:
    # RFC 6761: every name under .localhost is a loopback name. In a container SAM starts, the
    # development issuer is reached by such a name mapped to the host (`--add-host issuer.localhost:...`).
    settings = Settings.model_validate({"OIDC_JWKS_URL": f"http://{host}:4567/jwks", "AWS_SAM_LOCAL": "true"})
    assert settings.oidc_jwks_url is not None


@pytest.mark.parametrize(
    "host",
    [
        "localhost.attacker.example",
        "attackerlocalhost",
        "localhost-x.example",
        "issuer.localhost.example",
        "172.17.0.1",
    ],
)
def test_names_that_only_look_like_loopback_stay_https_only(host: str) -> None:
    for local_flag in ("ALLOW_LOOPBACK_ISSUER", "AWS_SAM_LOCAL"):
        with pytest.raises(ValidationError):
            Settings.model_validate({"OIDC_JWKS_URL": f"http://{host}:4567/jwks", local_flag: "true"})


def test_a_localhost_name_is_https_only_outside_local_runs() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"OIDC_JWKS_URL": "http://issuer.localhost:4567/jwks"})


def test_sam_local_invoke_may_use_a_loopback_issuer() -> None:
    # sam local invoke passes only the variables the template declares (never ALLOW_LOOPBACK_ISSUER),
    # and always AWS_SAM_LOCAL=true; Lambda itself never sets it.
    settings = Settings.model_validate({"OIDC_ISSUER": "http://127.0.0.1:4567", "AWS_SAM_LOCAL": "true"})
    assert settings.oidc_issuer is not None


def test_sam_local_does_not_open_http_to_other_hosts() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"OIDC_ISSUER": "http://issuer.example.test", "AWS_SAM_LOCAL": "true"})


@pytest.mark.parametrize(
    "url",
    [
        "ws://abc.execute-api.eu-west-1.amazonaws.com/v1",
        "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
        "wss://user:pw@abc.example.test/v1",
        "wss://abc.example.test/v1?ticket=fixed",
        "ws://127.0.0.1:3001",
    ],
    ids=["plain-ws", "https", "credentials", "query", "loopback-ws-without-local-mode"],
)
def test_stream_url_must_be_wss_without_credentials_or_query(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"STREAM_URL": url})


def test_stream_url_may_be_plain_ws_on_loopback_in_local_runs() -> None:
    settings = Settings.model_validate({"STREAM_URL": "ws://127.0.0.1:3001", "ALLOW_LOOPBACK_ISSUER": "true"})
    assert settings.stream_url == "ws://127.0.0.1:3001"
    assert Settings.model_validate({"STREAM_URL": "wss://a.example.test/v1"}).stream_url == "wss://a.example.test/v1"


def test_the_lean_settings_read_the_same_table_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatbot_security.platform.lean_settings import get_lean_settings

    monkeypatch.setenv("TABLE_NAME", "stack-ChatTable-1A2B")
    assert get_lean_settings().table_name == Settings.model_validate({"TABLE_NAME": "stack-ChatTable-1A2B"}).table_name


@pytest.mark.parametrize("value", ["", "  ", "a", "bad name", "x" * 256])
def test_the_lean_settings_refuse_a_missing_or_malformed_table_name(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from chatbot_security.platform.lean_settings import get_lean_settings

    monkeypatch.setenv("TABLE_NAME", value)
    with pytest.raises(RuntimeError, match="TABLE_NAME"):
        get_lean_settings()


# ------------------------------------------------------------------ moderation


def test_moderation_is_off_by_default_outside_the_template() -> None:
    # The template sets MODERATION=guardrail; a bare environment (tests, local runs) has none.
    settings = Settings.model_validate({})
    assert settings.moderation == "off"
    assert settings.moderation_enabled is False
    assert settings.moderation_refusal_text == "Sorry, I can't share that answer."


@pytest.mark.parametrize("provider", ["bedrock", "openai", "echo"])
def test_guardrail_moderation_without_a_guardrail_is_refused(provider: str) -> None:
    with pytest.raises(ValidationError, match="MODERATION=guardrail needs BEDROCK_GUARDRAIL_ID"):
        Settings.model_validate({"MODERATION": "guardrail", "MODEL_PROVIDER": provider})


@pytest.mark.parametrize("provider", ["bedrock", "openai"])
def test_guardrail_moderation_takes_the_configured_guardrail(provider: str) -> None:
    settings = Settings.model_validate(
        {
            "MODERATION": "guardrail",
            "MODEL_PROVIDER": provider,
            "BEDROCK_GUARDRAIL_ID": "abc123def456",
            "BEDROCK_GUARDRAIL_VERSION": "3",
        }
    )
    assert settings.moderation_enabled
    assert (settings.bedrock_guardrail_id, settings.bedrock_guardrail_version) == ("abc123def456", "3")


@pytest.mark.parametrize("mode", ["fake", "on", "GUARDRAIL", ""])
def test_an_unknown_moderation_mode_is_refused(mode: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"MODERATION": mode})


@pytest.mark.parametrize("text", ["", "x" * 501])
def test_the_refusal_text_is_one_to_500_characters(text: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"MODERATION_REFUSAL_TEXT": text})


def test_the_local_fake_guardrail_is_refused_outside_local_runs() -> None:
    with pytest.raises(ValidationError, match="local runs only"):
        Settings.model_validate({"MODERATION": "guardrail", "LOCAL_FAKE_GUARDRAIL": "true"})


def test_the_local_fake_guardrail_needs_moderation_on() -> None:
    with pytest.raises(ValidationError, match="needs MODERATION=guardrail"):
        Settings.model_validate({"LOCAL_FAKE_GUARDRAIL": "true", "ALLOW_LOOPBACK_ISSUER": "true"})


def test_the_local_fake_guardrail_stands_in_for_bedrock_locally() -> None:
    settings = Settings.model_validate(
        {"MODERATION": "guardrail", "LOCAL_FAKE_GUARDRAIL": "true", "ALLOW_LOOPBACK_ISSUER": "true"}
    )
    assert settings.moderation_enabled
    assert settings.local_fake_guardrail
