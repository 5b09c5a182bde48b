"""The no-bypass check of the edge (docs/edge.md): origin header values, rotation, viewer address."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError
from support.clocks import ManualClock

from chatbot_security.identity.edge import OriginVerifier, client_ip, origin_secret_values, verifier_for, viewer_ip
from chatbot_security.platform.secrets import CURRENT, PREVIOUS, SecretCache
from chatbot_security.platform.settings import Settings

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:origin-AbCdEf"
OLD, NEW = "o" * 64, "n" * 64


@dataclass
class FakeSecret:
    """One secret's version stages, as Secrets Manager holds them; counts the reads."""

    stages: dict[str, str] = field(default_factory=lambda: {CURRENT: OLD})
    reads: int = 0

    def fetch(self, secret_id: str, stage: str) -> str | None:
        assert secret_id == SECRET_ARN
        self.reads += 1
        return self.stages.get(stage)

    def rotate(self, value: str) -> None:
        """put-secret-value: the new value becomes current, the old one previous."""
        self.stages = {CURRENT: value, PREVIOUS: self.stages[CURRENT]}

    def finish_rotation(self) -> None:
        """update-secret-version-stage --remove-from-version-id: the previous value is retired."""
        self.stages.pop(PREVIOUS, None)


def verifier(secret: FakeSecret, clock: ManualClock, max_age: float = 300) -> OriginVerifier:
    cache = SecretCache(fetch=secret.fetch, max_age_seconds=max_age, clock=clock)
    return OriginVerifier(lambda: origin_secret_values(cache, SECRET_ARN))


def test_the_current_value_is_accepted() -> None:
    assert verifier(FakeSecret(), ManualClock(1000.0)).is_valid({"x-origin-verify": OLD})


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-origin-verify": ""}, {"x-origin-verify": "o" * 63}, {"x-origin-verify": OLD + "x"}, None, "x"],
    ids=["missing", "empty", "prefix", "longer", "no-headers", "not-a-mapping"],
)
def test_a_missing_or_wrong_value_is_refused(headers: object) -> None:
    assert not verifier(FakeSecret(), ManualClock(1000.0)).is_valid(headers)


def test_an_oversized_value_is_refused_without_reading_the_secret() -> None:
    secret = FakeSecret()
    assert not verifier(secret, ManualClock(1000.0)).is_valid({"x-origin-verify": "o" * 10_000})
    assert secret.reads == 0


def test_the_header_name_is_matched_case_insensitively() -> None:
    assert verifier(FakeSecret(), ManualClock(1000.0)).is_valid({"X-Origin-Verify": OLD})


def test_during_a_rotation_both_values_are_accepted() -> None:
    secret, clock = FakeSecret(), ManualClock(1000.0)
    check = verifier(secret, clock)
    secret.rotate(NEW)
    clock.now += 301  # the container's cache has expired
    assert check.is_valid({"x-origin-verify": NEW})
    assert check.is_valid({"x-origin-verify": OLD})


def test_the_previous_value_is_refused_once_the_rotation_completes() -> None:
    secret, clock = FakeSecret(), ManualClock(1000.0)
    check = verifier(secret, clock)
    secret.rotate(NEW)
    clock.now += 301
    assert check.is_valid({"x-origin-verify": OLD})
    secret.finish_rotation()
    clock.now += 301
    assert not check.is_valid({"x-origin-verify": OLD})
    assert check.is_valid({"x-origin-verify": NEW})


def test_warm_checks_make_no_secrets_manager_call() -> None:
    secret, clock = FakeSecret(), ManualClock(1000.0)
    check = verifier(secret, clock)
    check.is_valid({"x-origin-verify": OLD})
    reads = secret.reads
    for _ in range(5):
        check.is_valid({"x-origin-verify": OLD})
    assert secret.reads == reads


def test_the_edge_needs_the_origin_secret() -> None:
    with pytest.raises(ValidationError, match="EDGE_ORIGIN_SECRET_ARN"):
        Settings.model_validate({"EDGE_PROTECTION": "waf"})


def test_edge_protection_accepts_only_none_or_waf() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"EDGE_PROTECTION": "cloudfront", "EDGE_ORIGIN_SECRET_ARN": SECRET_ARN})


def test_the_edge_is_off_by_default() -> None:
    assert Settings.model_validate({}).edge_enabled is False


def test_the_verifier_reads_the_configured_secret() -> None:
    settings = Settings.model_validate({"EDGE_PROTECTION": "waf", "EDGE_ORIGIN_SECRET_ARN": SECRET_ARN})
    check = verifier_for(settings, SecretCache(fetch=FakeSecret().fetch, clock=ManualClock(1000.0)))
    assert check.is_valid({"x-origin-verify": OLD})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198.51.100.10:46532", "198.51.100.10"),
        ("[2001:db8::1]:46532", "2001:db8::1"),
        ("2001:db8::1:46532", "2001:db8::1"),
        ("198.51.100.10", None),
        ("not-an-ip:443", None),
        ("", None),
    ],
)
def test_the_viewer_address_is_parsed(value: str, expected: str | None) -> None:
    assert viewer_ip({"cloudfront-viewer-address": value}) == expected


def event_from(source_ip: str, viewer: str | None) -> dict[str, object]:
    headers = {"cloudfront-viewer-address": viewer} if viewer else {}
    return {"headers": headers, "requestContext": {"http": {"sourceIp": source_ip}}}


def test_the_viewer_address_counts_only_behind_a_verified_origin() -> None:
    event = event_from("130.176.0.1", "198.51.100.10:46532")
    assert client_ip(event, origin_verified=True) == "198.51.100.10"
    assert client_ip(event, origin_verified=False) == "130.176.0.1"


def test_a_verified_request_without_a_usable_viewer_address_counts_its_source_address() -> None:
    assert client_ip(event_from("130.176.0.1", "garbage"), origin_verified=True) == "130.176.0.1"
