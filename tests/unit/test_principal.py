"""Rules 4 and 5: the authorizer context is the only identity the chat function trusts, and it goes stale."""

from __future__ import annotations

from typing import Any

import pytest

from chatbot_security.identity.principal import EXPIRY_LEEWAY_SECONDS, Principal

NOW = 1_800_000_000
USER = Principal(kind="user", subject="alice", issuer="https://issuer.example.test", roles=("admin",), mfa=True,
                 expires_at=NOW + 300)  # fmt: skip


def test_the_context_round_trips() -> None:
    assert Principal.from_authorizer_context(USER.to_authorizer_context(), now=NOW) == USER


def test_the_context_carries_only_flat_values() -> None:
    assert all(isinstance(value, str | bool | int) for value in USER.to_authorizer_context().values())


def test_a_context_whose_credential_expired_is_refused() -> None:
    # An "allow" served from the authorizer's result cache after the token expired.
    context = USER.to_authorizer_context()
    with pytest.raises(ValueError, match="expired"):
        Principal.from_authorizer_context(context, now=NOW + 300 + EXPIRY_LEEWAY_SECONDS)


def test_a_context_inside_the_leeway_is_accepted() -> None:
    context = USER.to_authorizer_context()
    assert Principal.from_authorizer_context(context, now=NOW + 300 + EXPIRY_LEEWAY_SECONDS - 1).subject == "alice"


def test_an_expiry_passed_as_text_is_read_the_same() -> None:
    context = {**USER.to_authorizer_context(), "expires_at": str(NOW + 300)}
    assert Principal.from_authorizer_context(context, now=NOW).expires_at == NOW + 300


@pytest.mark.parametrize(
    "context",
    [
        None,
        "kind=user",
        {},
        {"kind": "root", "subject": "alice"},
        {"kind": "user", "subject": ""},
        {"kind": "user", "subject": "alice", "roles": "admin"},
        {"kind": "user", "subject": "alice", "roles": '["admin", 7]'},
        {"kind": "user", "subject": "alice", "expires_at": "soon"},
        {"kind": "user", "subject": "alice", "expires_at": -5},
        {"kind": "user", "subject": "alice", "extra": "x", "expires_at": True},
    ],
    ids=["none", "text", "empty", "unknown-kind", "empty-subject", "roles-not-json", "roles-not-strings",
         "expiry-not-a-number", "negative-expiry", "boolean-expiry"],
)  # fmt: skip
def test_a_malformed_context_is_refused(context: Any) -> None:
    with pytest.raises(ValueError, match="authorizer context"):
        Principal.from_authorizer_context(context, now=NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "root", "subject": "alice"},
        {"kind": ["user"], "subject": "alice"},
        {"kind": "user", "subject": ""},
        {"kind": "user", "subject": "a" * 513},
        {"kind": "user", "subject": 7},
        {"kind": "user", "subject": "alice", "issuer": None},
        {"kind": "user", "subject": "alice", "issuer": "i" * 2049},
        {"kind": "user", "subject": "alice", "roles": ["admin"]},
        {"kind": "user", "subject": "alice", "roles": ("admin", 7)},
        {"kind": "user", "subject": "alice", "roles": ("r",) * 101},
        {"kind": "user", "subject": "alice", "roles": ("r" * 257,)},
        {"kind": "user", "subject": "alice", "mfa": "true"},
        {"kind": "anonymous", "subject": "s", "session_id": 5},
        {"kind": "user", "subject": "alice", "expires_at": -1},
        {"kind": "user", "subject": "alice", "expires_at": True},
        {"kind": "user", "subject": "alice", "expires_at": "1800000000"},
        {"kind": "user", "subject": "alice", "expires_at": 1.5},
    ],
    ids=["unknown-kind", "unhashable-kind", "empty-subject", "long-subject", "subject-not-text", "issuer-none",
         "long-issuer", "roles-as-list", "role-not-text", "too-many-roles", "long-role", "mfa-as-text",
         "session-id-not-text", "negative-expiry", "boolean-expiry", "expiry-as-text", "fractional-expiry"],
)  # fmt: skip
def test_a_principal_with_a_field_of_the_wrong_type_or_size_cannot_be_built(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid principal"):
        Principal(**fields)


def test_a_principal_is_immutable() -> None:
    with pytest.raises(AttributeError):
        USER.subject = "mallory"  # type: ignore[misc]
