"""Rule 2: JWKS discovery, caching, refetch cooldown, last good keys."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.clocks import ManualClock
from support.tokens import AUDIENCE, ISSUER, KID, FakeIssuer

from chatbot_security.identity.http_fetch import FetchError
from chatbot_security.identity.jwks import MIN_FETCH_INTERVAL_SECONDS, JwksCache
from chatbot_security.platform.settings import Settings


class FakeIdp:
    def __init__(self, issuer: FakeIssuer) -> None:
        self.issuer = issuer
        self.jwks: dict[str, Any] = issuer.jwks()
        self.down = False
        self.calls: list[tuple[str, float]] = []

    def __call__(self, url: str, timeout: float) -> dict[str, Any]:
        self.calls.append((url, timeout))
        if self.down:
            raise FetchError("down")
        if url.endswith("/.well-known/openid-configuration"):
            return self.issuer.discovery()
        return self.jwks

    @property
    def jwks_fetches(self) -> int:
        return sum(1 for url, _ in self.calls if url.endswith("jwks.json"))


@pytest.fixture(scope="module")
def issuer() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
def idp(issuer: FakeIssuer) -> FakeIdp:
    return FakeIdp(issuer)


def cache_for(idp: FakeIdp, clock: ManualClock, **env: str) -> JwksCache:
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, **env})
    return JwksCache(settings, fetch=idp, clock=clock)


def test_keys_come_from_the_discovery_documents_jwks_uri(idp: FakeIdp) -> None:
    cache = cache_for(idp, ManualClock(1000.0))
    assert cache.key_for(KID) is not None
    assert [url for url, _ in idp.calls] == [ISSUER + "/.well-known/openid-configuration", ISSUER + "/jwks.json"]


def test_jwks_url_override_skips_discovery(idp: FakeIdp) -> None:
    cache = cache_for(idp, ManualClock(1000.0), OIDC_JWKS_URL="https://keys.example.test/jwks.json")
    cache.key_for(KID)
    assert [url for url, _ in idp.calls] == ["https://keys.example.test/jwks.json"]


def test_fetch_timeout_is_at_most_two_seconds(idp: FakeIdp) -> None:
    cache_for(idp, ManualClock(1000.0)).key_for(KID)
    assert all(timeout <= 2 for _, timeout in idp.calls)


def test_keys_are_cached_for_at_least_five_minutes(idp: FakeIdp) -> None:
    clock = ManualClock(1000.0)
    cache = cache_for(idp, clock)
    cache.key_for(KID)
    clock.now += 299
    cache.key_for(KID)
    assert idp.jwks_fetches == 1


def test_thirty_unknown_kids_in_a_row_cost_one_fetch_per_cooldown(idp: FakeIdp) -> None:
    clock = ManualClock(1000.0)
    cache = cache_for(idp, clock)
    cache.key_for(KID)
    for n in range(30):
        assert cache.key_for(f"made-up-{n}") is None
        clock.now += 0.5
    assert idp.jwks_fetches == 1  # the first fetch; the 30 s cooldown swallows the rest
    clock.now += MIN_FETCH_INTERVAL_SECONDS
    cache.key_for("made-up-again")
    assert idp.jwks_fetches == 2


def test_a_rotated_in_key_is_found_after_the_cooldown(idp: FakeIdp, issuer: FakeIssuer) -> None:
    clock = ManualClock(1000.0)
    cache = cache_for(idp, clock)
    cache.key_for(KID)
    idp.jwks = {"keys": [issuer.jwk(), issuer.jwk(kid="rotated")]}
    clock.now += MIN_FETCH_INTERVAL_SECONDS
    assert cache.key_for("rotated") is not None


def test_keys_not_meant_for_signatures_are_ignored(idp: FakeIdp, issuer: FakeIssuer) -> None:
    idp.jwks = {"keys": [issuer.jwk(use="enc")]}
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None


def test_symmetric_and_private_keys_in_a_jwks_are_ignored(idp: FakeIdp, issuer: FakeIssuer) -> None:
    idp.jwks = {"keys": [{"kty": "oct", "kid": KID, "k": "c2VjcmV0"}, issuer.jwk(d="private")]}
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None


def test_last_good_keys_keep_working_while_the_issuer_is_down(idp: FakeIdp) -> None:
    clock = ManualClock(1000.0)
    cache = cache_for(idp, clock)
    assert cache.key_for(KID) is not None
    idp.down = True
    clock.now += 3600
    assert cache.key_for(KID) is not None


def test_no_keys_at_all_means_deny(idp: FakeIdp) -> None:
    idp.down = True
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None


def test_a_failed_refresh_is_logged_with_its_reason(idp: FakeIdp, log_output: Any) -> None:
    # An "unknown_kid" denial that is really an unreachable issuer must be traceable from the logs
    idp.down = True
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert [(line["message"], line["error"]) for line in lines] == [("key set refresh failed", "down")]


def test_discovery_with_another_issuer_is_refused(idp: FakeIdp, issuer: FakeIssuer) -> None:
    idp.issuer = FakeIssuer(issuer="https://evil.example.test", key=issuer.key)
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None


def test_discovery_pointing_jwks_at_plain_http_is_refused(issuer: FakeIssuer) -> None:
    def fetch(url: str, timeout: float) -> dict[str, Any]:
        if url.endswith("openid-configuration"):
            return issuer.discovery(jwks_uri="http://keys.example.test/jwks.json")
        return issuer.jwks()

    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE})
    assert JwksCache(settings, fetch=fetch, clock=ManualClock(1000.0)).key_for(KID) is None


def test_rsa_keys_under_2048_bits_are_ignored(idp: FakeIdp) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = FakeIssuer(key=rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - under test
    idp.jwks = {"keys": [weak.jwk()]}
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None


def test_keys_with_malformed_kids_in_the_jwks_are_ignored(idp: FakeIdp, issuer: FakeIssuer) -> None:
    idp.jwks = {"keys": [issuer.jwk(kid="../etc/passwd"), issuer.jwk(kid="ok\r\n"), issuer.jwk(kid=7)]}
    cache = cache_for(idp, ManualClock(1000.0))
    assert cache.key_for("../etc/passwd") is None
    assert cache.key_for("ok\r\n") is None


def test_keys_for_algorithms_outside_the_allowlist_are_ignored(idp: FakeIdp, issuer: FakeIssuer) -> None:
    idp.jwks = {"keys": [issuer.jwk(alg="RS512")]}
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None


def test_a_jwks_with_no_usable_key_keeps_the_last_good_keys(idp: FakeIdp, issuer: FakeIssuer) -> None:
    clock = ManualClock(1000.0)
    cache = cache_for(idp, clock)
    assert cache.key_for(KID) is not None
    idp.jwks = {"keys": [issuer.jwk(use="enc")]}
    clock.now += 3600
    assert cache.key_for(KID) is not None


def test_a_key_removed_from_the_jwks_stops_working_after_the_refresh(idp: FakeIdp, issuer: FakeIssuer) -> None:
    clock = ManualClock(1000.0)
    cache = cache_for(idp, clock)
    assert cache.key_for(KID) is not None
    idp.jwks = {"keys": [issuer.jwk(kid="successor")]}
    clock.now += 600  # the TTL
    assert cache.key_for(KID) is None
    assert cache.key_for("successor") is not None


def test_one_refresh_gets_two_seconds_in_all(issuer: FakeIssuer) -> None:
    clock = ManualClock(1000.0)
    timeouts: list[float] = []

    def slow_discovery(url: str, timeout: float) -> dict[str, Any]:
        timeouts.append(timeout)
        clock.now += 1.5  # discovery took 1.5 s of the budget
        return issuer.discovery() if url.endswith("openid-configuration") else issuer.jwks()

    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE})
    JwksCache(settings, fetch=slow_discovery, clock=clock).key_for(KID)
    assert timeouts == [2.0, pytest.approx(0.5)]


def test_a_refresh_out_of_time_keeps_the_last_good_keys(idp: FakeIdp, issuer: FakeIssuer) -> None:
    clock = ManualClock(1000.0)
    cache = cache_for(idp, clock)
    assert cache.key_for(KID) is not None

    def hanging(url: str, timeout: float) -> dict[str, Any]:
        clock.now += timeout
        raise FetchError("timed out")

    cache._fetch = hanging
    clock.now += 3600
    assert cache.key_for(KID) is not None


def test_cache_lifetime_and_cooldown_cannot_be_configured_below_the_rule(idp: FakeIdp) -> None:
    clock = ManualClock(1000.0)
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE})
    cache = JwksCache(settings, fetch=idp, clock=clock, ttl_seconds=1, min_fetch_interval_seconds=1, timeout_seconds=60)
    cache.key_for(KID)
    clock.now += 10
    cache.key_for("unknown")  # inside the 30 s cooldown, whatever was configured
    clock.now += 289
    cache.key_for(KID)  # inside the 5 minute lifetime, whatever was configured
    assert idp.jwks_fetches == 1
    assert all(timeout <= 2 for _, timeout in idp.calls)


@pytest.mark.parametrize(
    "document",
    [{"keys": "not-a-list"}, {}, {"keys": [{"kty": "RSA", "kid": KID, "n": "!!", "e": "AQAB"}]}],
    ids=["keys-not-a-list", "no-keys", "unloadable-key"],
)
def test_a_jwks_without_usable_keys_is_no_key_at_all(idp: FakeIdp, document: dict[str, Any]) -> None:
    idp.jwks = document
    assert cache_for(idp, ManualClock(1000.0)).key_for(KID) is None


def test_keys_without_alg_get_the_first_allowed_algorithm_of_their_family(idp: FakeIdp, issuer: FakeIssuer) -> None:
    jwk = issuer.jwk()
    del jwk["alg"]
    idp.jwks = {"keys": [jwk, {**issuer.jwk(kid="ec-like"), "kty": "OKP", "alg": None}]}
    key = cache_for(idp, ManualClock(1000.0), OIDC_ALGORITHMS="ES256,RS256").key_for(KID)
    assert key is not None
    assert key.algorithm_name == "RS256"


def test_discovery_without_a_jwks_uri_gives_no_keys(issuer: FakeIssuer) -> None:
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE})
    fetch = lambda url, timeout: {"issuer": ISSUER} if "openid" in url else issuer.jwks()  # noqa: E731
    assert JwksCache(settings, fetch=fetch, clock=ManualClock(1000.0)).key_for(KID) is None


def test_without_an_issuer_there_is_nothing_to_fetch(idp: FakeIdp) -> None:
    cache = JwksCache(Settings.model_validate({}), fetch=idp, clock=ManualClock(1000.0))
    assert cache.key_for(KID) is None
    assert idp.calls == []


def test_discovery_that_used_up_the_budget_leaves_no_time_for_the_jwks(issuer: FakeIssuer) -> None:
    clock = ManualClock(1000.0)
    calls: list[str] = []

    def slow(url: str, timeout: float) -> dict[str, Any]:
        calls.append(url)
        clock.now += 2.5
        return issuer.discovery()

    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE})
    assert JwksCache(settings, fetch=slow, clock=clock).key_for(KID) is None
    assert calls == [ISSUER + "/.well-known/openid-configuration"]
