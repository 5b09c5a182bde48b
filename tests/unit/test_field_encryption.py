"""Rule 8 and the review's finding 5: a message's ciphertext is bound to its session, id, role, position
and time (version 2), and version 1 ciphertexts written before stay readable."""

from __future__ import annotations

import dataclasses
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chatbot_security.privacy import crypto

KEY = bytes(range(32))
BINDING = crypto.MessageBinding(
    session_id="0b9f9a52-7c1e-4d4b-9a39-5d1f3a0c2b61",
    message_id="7d4c7d35-3f1a-4c44-8e2b-2f3b0d6f1a10",
    role="assistant",
    seq=2,
    created_ms=1_800_000_000_123,
)


def v1_ciphertext(key: bytes, session_id: str, message_id: str, text: str) -> bytes:
    """A version 1 ciphertext exactly as the documented format describes it (written before version 2)."""
    nonce = os.urandom(12)
    aad = f"chatbot/content/v1\x00{session_id}\x00{message_id}".encode()
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, text.encode(), aad)


def test_new_ciphertexts_are_version_2_and_open_with_the_same_binding() -> None:
    blob = crypto.seal(KEY, BINDING, "hello")
    assert blob[:1] == b"\x02"
    assert crypto.open_sealed(KEY, BINDING, blob) == "hello"


@pytest.mark.parametrize(
    "change",
    [
        {"session_id": "1c9f9a52-7c1e-4d4b-9a39-5d1f3a0c2b61"},
        {"message_id": "8d4c7d35-3f1a-4c44-8e2b-2f3b0d6f1a10"},
        {"role": "user"},
        {"seq": 1},
        {"seq": 4},
        {"created_ms": 1_800_000_000_124},
    ],
    ids=["session", "message", "role", "earlier-position", "later-position", "time"],
)
def test_a_version_2_ciphertext_does_not_open_under_another_binding(change: dict[str, object]) -> None:
    blob = crypto.seal(KEY, BINDING, "the model said this")
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(KEY, dataclasses.replace(BINDING, **change), blob)  # type: ignore[arg-type]


def test_fields_cannot_be_shifted_into_each_other() -> None:
    # The associated data is a JSON array: no separator inside a field can move text across fields
    tricky = dataclasses.replace(BINDING, message_id=BINDING.message_id + '","assistant')
    blob = crypto.seal(KEY, tricky, "x")
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(KEY, dataclasses.replace(tricky, message_id=BINDING.message_id), blob)


def test_version_1_ciphertexts_are_still_read() -> None:
    blob = v1_ciphertext(KEY, BINDING.session_id, BINDING.message_id, "written before version 2")
    assert crypto.open_sealed(KEY, BINDING, blob) == "written before version 2"


def test_a_version_1_ciphertext_still_does_not_move_to_another_message() -> None:
    blob = v1_ciphertext(KEY, BINDING.session_id, BINDING.message_id, "x")
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(KEY, dataclasses.replace(BINDING, message_id="another"), blob)


@pytest.mark.parametrize("blob", [b"", b"\x02", b"\x03" + bytes(40), b"\x02" + bytes(27)])
def test_unknown_or_truncated_ciphertexts_do_not_open(blob: bytes) -> None:
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(KEY, BINDING, blob)


def test_a_version_2_ciphertext_relabelled_as_version_1_does_not_open() -> None:
    blob = crypto.seal(KEY, BINDING, "x")
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(KEY, BINDING, b"\x01" + blob[1:])


@pytest.mark.parametrize(
    "marks", [{"moderated": True}, {"interrupted": True}, {"moderated": True, "interrupted": True}]
)
def test_a_mark_added_to_a_message_does_not_open(marks: dict[str, bool]) -> None:
    # Someone with write access to the table cannot make a normal answer look "moderated" (or cut short)
    blob = crypto.seal(KEY, BINDING, "an ordinary answer")
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(KEY, dataclasses.replace(BINDING, **marks), blob)  # type: ignore[arg-type]


def test_a_mark_removed_from_a_message_does_not_open() -> None:
    marked = dataclasses.replace(BINDING, moderated=True)
    blob = crypto.seal(KEY, marked, "the refusal text")
    assert crypto.open_sealed(KEY, marked, blob) == "the refusal text"
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(KEY, BINDING, blob)
