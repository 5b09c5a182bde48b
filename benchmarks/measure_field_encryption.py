"""Field encryption, measured: the AWS Encryption SDK against cryptography's AES-GCM with KMS-wrapped
data keys (the choice recorded in docs/data-protection.md).

    .venv/bin/python benchmarks/measure_field_encryption.py [--rounds N]

Not a budget check (it is not a ``bench_*`` script): run it when the choice is revisited. It needs the
``aws-encryption-sdk`` of the dev dependency group; KMS is an in-process moto server on loopback.

Measured, each the median of interleaved rounds:

* import time in a fresh interpreter (bytecode writes off, as on Lambda), on top of ``boto3``, which
  both need anyway;
* per message, seal then open of a typical (500 characters) and a maximal (4000) message:
  ``chatbot_security.privacy.crypto`` with the session's data key cached; the Encryption SDK with a KMS master
  key (its default, signing suite), with the data-key caching materials manager, and without the
  KMS round trip (a raw AES master key: the SDK's own work alone), in both the signing and the
  non-signing committing suites;
* KMS calls per message and the ciphertext overhead in bytes.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "security"), str(ROOT / "local")]

REGION = "eu-west-1"
SESSION_ID = "6f1c2b9e-8a47-4c1e-9d3b-2f6a8e4c1d2a"
MESSAGE_ID = "0b7e6a52-3c1d-4f8e-9a2b-5d4c3e2f1a0b"
# What a stored message's ciphertext is bound to: session, message, role, sequence number, creation time.
BINDING = (SESSION_ID, MESSAGE_ID, "user", 1, 1_800_000_000_000)
IMPORTS = {
    "cryptography AESGCM + chatbot_security.privacy.crypto": "import chatbot_security.privacy.crypto",
    "aws_encryption_sdk": "import aws_encryption_sdk; import aws_encryption_sdk.key_providers.kms",
}


def import_seconds(statement: str, rounds: int) -> float:
    probe = f"import time, boto3\nstarted = time.perf_counter()\n{statement}\nprint(time.perf_counter() - started)\n"
    environ = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT / "layers" / "security")}
    samples = []
    for _ in range(rounds):
        finished = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=environ
        )
        samples.append(float(finished.stdout.strip()))
    return statistics.median(samples)


def per_call_us(operation: Callable[[], Any], rounds: int, minimum: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        count, started = 0, time.perf_counter()
        while count < minimum or time.perf_counter() - started < 0.05:
            operation()
            count += 1
        samples.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(samples)


class KmsCalls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, **_: Any) -> None:
        self.count += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args(argv)
    rounds = options.rounds

    print(f"Import time on top of boto3 (fresh interpreter, no bytecode writes, median of {rounds}):")
    for label, statement in IMPORTS.items():
        print(f"  {label:48s} {import_seconds(statement, rounds) * 1000:8.1f} ms")
    measure_messages(rounds)
    return 0


def _seal_and_open(crypto: Any, key: bytes, text: str) -> str:
    """One message through ``chatbot_security.privacy.crypto``, with its own binding as the chat function builds it."""
    binding = crypto.MessageBinding(*BINDING)
    return str(crypto.open_sealed(key, binding, crypto.seal(key, binding, text)))


def measure_messages(rounds: int) -> None:
    import botocore.session
    from aws_encryption_sdk import (
        CachingCryptoMaterialsManager,
        CommitmentPolicy,
        EncryptionSDKClient,
        LocalCryptoMaterialsCache,
    )
    from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

    from chatbot_local.aws import MotoService
    from chatbot_security.privacy import crypto

    moto = MotoService()
    endpoint = moto.start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    try:
        kms_calls = KmsCalls()
        session = botocore.session.Session()
        session.register("before-parameter-build.kms", kms_calls)
        kms = session.create_client("kms", region_name=REGION)
        key_arn = kms.create_key(Description="measurement")["KeyMetadata"]["Arn"]
        context = crypto.encryption_context(SESSION_ID)

        # Ours: one GenerateDataKey per session, then the data key from the container's cache.
        data_keys = crypto.DataKeys(lambda: kms, key_arn)
        key = data_keys.new_key(SESSION_ID).plaintext

        sdk = EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
        kms_provider = StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)
        caching = CachingCryptoMaterialsManager(
            master_key_provider=kms_provider,
            cache=LocalCryptoMaterialsCache(capacity=100),
            max_age=300.0,
            max_messages_encrypted=1000,
        )
        raw_key = RawMasterKey(
            provider_id="bench",
            key_id=b"bench-key",
            wrapping_key=WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=os.urandom(32),
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            ),
        )
        signing = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
        committing = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY

        def ours(text: str) -> tuple[Callable[[], Any], int]:
            def run() -> Any:
                return _seal_and_open(crypto, key, text)

            return run, len(crypto.seal(key, crypto.MessageBinding(*BINDING), text)) - len(text.encode())

        def esdk(text: str, **where: Any) -> tuple[Callable[[], Any], int]:
            encrypt_args = {"encryption_context": {**context, "message_id": MESSAGE_ID}, **where}
            decrypt_args = {k: v for k, v in where.items() if k != "algorithm"}

            def run() -> Any:
                ciphertext, _ = sdk.encrypt(source=text.encode(), **encrypt_args)
                plaintext, _ = sdk.decrypt(source=ciphertext, **decrypt_args)
                return plaintext

            ciphertext, _ = sdk.encrypt(source=text.encode(), **encrypt_args)
            return run, len(ciphertext) - len(text.encode())

        sdk_variants = {
            "ESDK, KMS key, default suite (signing)": {"key_provider": kms_provider},
            "ESDK, KMS key, committing, no signing": {"key_provider": kms_provider, "algorithm": committing},
            "ESDK, KMS key + caching CMM, no signing": {"materials_manager": caching, "algorithm": committing},
            "ESDK, raw AES key, signing (no KMS)": {"key_provider": raw_key, "algorithm": signing},
            "ESDK, raw AES key, no signing (no KMS)": {"key_provider": raw_key, "algorithm": committing},
        }
        variants: dict[str, Callable[[str], tuple[Callable[[], Any], int]]] = {
            "AES-GCM, cached KMS data key (chosen)": ours,
            **{label: functools.partial(esdk, **where) for label, where in sdk_variants.items()},
        }
        for size in (500, 4000):
            text = ("The quick brown fox jumps over the lazy dog. " * 100)[:size]
            print(f"\nSeal + open of one {size}-character message (median of {rounds} rounds), KMS on loopback moto:")
            print(f"  {'variant':48s} {'per message':>12s} {'KMS calls':>10s} {'overhead':>9s}")
            for label, build in variants.items():
                run, overhead = build(text)
                run()  # warm: caches filled, connections open
                kms_calls.count = 0
                run()
                single_kms = kms_calls.count
                micros = per_call_us(run, rounds)
                print(f"  {label:48s} {micros:9.0f} us {single_kms:10d} {overhead:7d} B")
    finally:
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
