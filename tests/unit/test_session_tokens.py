"""Rule 3: anonymous session tokens are signed, bound to one session and an expiry, typed, rotation-safe."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from chatbot_security.identity import session_tokens
from chatbot_security.identity.token_errors import TokenRejected

CURRENT = session_tokens.derive_key("current-secret-value")
PREVIOUS = session_tokens.derive_key("previous-secret-value")
SESSION = str(uuid.uuid4())


def future() -> int:
    return int(time.time()) + 600


def test_token_opens_exactly_its_session() -> None:
    principal = session_tokens.verify(session_tokens.issue(CURRENT, SESSION, future()), [CURRENT])
    assert principal.kind == "anonymous"
    assert principal.session_id == SESSION


def test_expired_session_token_is_denied() -> None:
    token = session_tokens.issue(CURRENT, SESSION, int(time.time()) - 1)
    with pytest.raises(TokenRejected, match="expired"):
        session_tokens.verify(token, [CURRENT])


def test_token_rebound_to_another_session_is_denied() -> None:
    token = session_tokens.issue(CURRENT, SESSION, future())
    forged = token.replace(SESSION, str(uuid.uuid4()))
    with pytest.raises(TokenRejected, match="signature"):
        session_tokens.verify(forged, [CURRENT])


def test_extended_expiry_is_denied() -> None:
    token = session_tokens.issue(CURRENT, SESSION, future())
    prefix, sid, expiry, mac = token.split(".")
    with pytest.raises(TokenRejected, match="signature"):
        session_tokens.verify(f"{prefix}.{sid}.{int(expiry) + 86400:010d}.{mac}", [CURRENT])


def test_token_signed_with_another_key_is_denied() -> None:
    token = session_tokens.issue(session_tokens.derive_key("attacker"), SESSION, future())
    with pytest.raises(TokenRejected, match="signature"):
        session_tokens.verify(token, [CURRENT, PREVIOUS])


def test_previous_secret_version_still_verifies_after_rotation() -> None:
    token = session_tokens.issue(PREVIOUS, SESSION, future())
    assert session_tokens.verify(token, [CURRENT, PREVIOUS]).session_id == SESSION
    with pytest.raises(TokenRejected):
        session_tokens.verify(token, [CURRENT])


@pytest.mark.parametrize(
    "token",
    [
        "",
        "cs1.",
        "cs2." + SESSION + ".9999999999." + "A" * 43,
        "cs1." + SESSION.upper() + ".9999999999." + "A" * 43,
        "cs1." + SESSION + ".9999999999." + "A" * 42,
        "cs1." + SESSION + ".9999999999." + "A" * 43 + ".extra",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "cs1." + "x" * 300,
    ],
)
def test_malformed_session_tokens_are_denied(token: str) -> None:
    with pytest.raises(TokenRejected):
        session_tokens.verify(token, [CURRENT])


def test_derived_key_differs_from_the_raw_secret() -> None:
    assert session_tokens.derive_key("s") != b"s"


def test_token_with_a_trailing_newline_is_denied() -> None:
    token = session_tokens.issue(CURRENT, SESSION, future())
    with pytest.raises(TokenRejected, match="malformed"):
        session_tokens.verify(token + "\n", [CURRENT])


def test_token_expiring_later_than_the_longest_session_is_denied() -> None:
    # Only a leaked signing key could produce one: refuse it even with a valid MAC.
    token = session_tokens.issue(CURRENT, SESSION, int(time.time()) + 2 * 86400)
    with pytest.raises(TokenRejected, match="expiry_too_far"):
        session_tokens.verify(token, [CURRENT], max_lifetime_seconds=86400)


def test_principal_carries_the_token_expiry() -> None:
    expires_at = future()
    assert session_tokens.verify(session_tokens.issue(CURRENT, SESSION, expires_at), [CURRENT]).expires_at == expires_at


def test_no_keys_means_deny() -> None:
    with pytest.raises(TokenRejected, match="signature"):
        session_tokens.verify(session_tokens.issue(CURRENT, SESSION, future()), [])


def test_access_token_is_never_a_session_token() -> None:
    from support.tokens import FakeIssuer

    with pytest.raises(TokenRejected, match=r"too_large|malformed"):
        session_tokens.verify(FakeIssuer().token(), [CURRENT])


def test_the_raw_secret_cannot_sign_a_session_token() -> None:
    # The key is derived for this purpose only: a MAC made with the secret itself does not verify.
    token = session_tokens.issue(b"current-secret-value", SESSION, future())
    with pytest.raises(TokenRejected, match="signature"):
        session_tokens.verify(token, [CURRENT])


def test_mac_spelled_non_canonically_is_refused() -> None:
    token = session_tokens.issue(CURRENT, SESSION, future())
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = token[:-1] + alphabet[alphabet.index(token[-1]) | 1]  # spare bits set: same MAC bytes
    with pytest.raises(TokenRejected, match="malformed"):
        session_tokens.verify(same_bytes, [CURRENT])


def test_the_previous_key_is_only_consulted_when_the_current_one_fails() -> None:
    consulted: list[str] = []

    def keys() -> Iterator[bytes]:
        for name, key in (("current", CURRENT), ("previous", PREVIOUS)):
            consulted.append(name)
            yield key

    session_tokens.verify(session_tokens.issue(CURRENT, SESSION, future()), keys())
    assert consulted == ["current"]


def test_a_session_token_that_slips_into_a_log_record_is_redacted() -> None:
    from chatbot_security.privacy.redaction import redact_text

    token = session_tokens.issue(CURRENT, SESSION, future())
    line = redact_text(f"failed for {token} and {token[:60]}")
    assert "cs1." not in line
    assert token.rpartition(".")[2] not in line


@pytest.mark.parametrize("expires_at", [10**400, 10**10, 2**63])
def test_a_correctly_signed_token_with_a_huge_expiry_is_denied_cleanly(expires_at: int) -> None:
    # Given a token signed with the real key whose expiry has more than the 10 digits of the format
    # (only someone holding the key could make it: a leak, or a bug in issuing)
    signed = f"{session_tokens.PREFIX}.{SESSION}.{expires_at}"
    token = f"{signed}.{session_tokens._mac(CURRENT, signed)}"
    # Then it is refused with a reason code before any arithmetic on the number
    with pytest.raises(TokenRejected) as caught:
        session_tokens.verify(token, [CURRENT])
    assert caught.value.reason in ("too_large", "malformed")
