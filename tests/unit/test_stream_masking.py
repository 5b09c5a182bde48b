"""The stream masker: what it sends is always a prefix of the masked whole answer, whatever the chunking,
and nothing it sends can later turn out to be part of a card, phone, email, IBAN, SSN or IP address.

The invariant, precisely: after chunks c1..cj were fed, the text released so far is a prefix of
``mask_pii(c1 + ... + cj + x)`` for every continuation ``x``; after ``finish()`` it is exactly
``mask_pii(c1 + ... + cn)``. The tests check it with the real rest of the answer and with continuations
chosen to extend a value (more digits, a domain, another digit group).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot_security.privacy.pii import PiiMatch, find_pii, mask_pii
from chatbot_security.privacy.stream_masking import CONTEXT, WINDOW, StreamMasker

FULLWIDTH_CARD = "".join(chr(0xFF10 + int(char)) if char.isdigit() else char for char in "4111 1111 1111 1111")
PII_VALUES = [
    *["4111 1111 1111 1111", "4111111111111111", "4111-1111-1111-1111", "3782 822463 10005"],
    *["+44 20 7946 0958", "(415) 555-2671", "415-555-2671", "0612345678", "020 7946 0958"],
    *["jane.doe+tag@mail.example.com", "a@b.io", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"],
    *["123-45-6789", "ssn: 123456789", "192.0.2.1", "2001:db8::8a2e:370:7334"],
    *[FULLWIDTH_CARD, "4\u200b111 1111 1111 1111"],
]
PROSE = [
    *["Sure,", "here", "is", "the", "number", "you", "asked", "for:", "call", "me", "at", "or", "write", "to"],
    *["(see", "below)", "item", "3", "2024", "version", "1.2", "-", "ok.", "card", "IBAN", "\n", "  ", "#"],
]
#: Continuations that would extend or complete a value the released text ends with.
CONTINUATIONS = ["", "0", "1234", "1111 1111 1111", " 1111", "  2345", "-0000", ".example.com", "@example.com",
                 "@x.io", "7 8", ":370:7334", " 12 34", "00", ") 555-2671", "3704 0044 0532 0130 00"]  # fmt: skip


def stream(chunks: list[str], masker: StreamMasker | None = None) -> tuple[list[str], str]:
    """What the masker released after each chunk, and after finish()."""
    masker = masker or StreamMasker()
    released = [masker.feed(chunk) for chunk in chunks]
    return released, masker.finish()


def assert_safe_after_each_chunk(chunks: list[str]) -> None:
    sent, seen = "", ""
    for chunk, released in zip(chunks, stream(chunks)[0], strict=True):
        seen += chunk
        sent += released
        for continuation in CONTINUATIONS:
            assert mask_pii(seen + continuation).startswith(sent), (seen, continuation, sent)


answers = st.lists(st.sampled_from(PII_VALUES) | st.sampled_from(PROSE), min_size=1, max_size=12).flatmap(
    lambda parts: st.lists(
        st.sampled_from([" ", "", "\n", ", ", ".", "  "]), min_size=len(parts), max_size=len(parts)
    ).map(lambda glue: "".join(part + sep for part, sep in zip(parts, glue, strict=True)))
)


def chunked(text: str) -> st.SearchStrategy[list[str]]:
    positions = st.lists(st.integers(min_value=0, max_value=len(text)), max_size=len(text))
    return positions.map(
        lambda cuts: [text[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(text)], strict=True)]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_chunking_of_an_answer_releases_exactly_its_masked_text(data: st.DataObject) -> None:
    answer = data.draw(answers)
    chunks = data.draw(chunked(answer))
    released, rest = stream(chunks)
    assert "".join(released) + rest == mask_pii(answer)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_nothing_released_can_be_completed_into_a_value_by_what_follows(data: st.DataObject) -> None:
    answer = data.draw(answers)
    assert_safe_after_each_chunk(data.draw(chunked(answer)))


@pytest.mark.parametrize("value", PII_VALUES)
def test_a_value_split_at_every_position_is_never_released_unmasked(value: str) -> None:
    answer = f"Sure, here it is: {value} and that is all."
    for position in range(len(answer) + 1):
        chunks = [answer[:position], answer[position:]]
        released, rest = stream(chunks)
        assert "".join(released) + rest == mask_pii(answer)
        assert_safe_after_each_chunk(chunks)


@pytest.mark.parametrize("value", PII_VALUES)
def test_a_value_fed_character_by_character_is_never_released_unmasked(value: str) -> None:
    answer = f"Text before {value}\nand text after it, {value}."
    chunks = list(answer)
    assert_safe_after_each_chunk(chunks)
    released, rest = stream(chunks)
    assert "".join(released) + rest == mask_pii(answer)


def test_prose_without_digits_is_released_up_to_its_last_word() -> None:
    masker = StreamMasker()
    assert masker.feed("Hello there, how ") == "Hello there, how "
    assert masker.feed("are yo") == "are "
    assert masker.feed("u?") == ""
    assert masker.finish() == "you?"


def test_an_email_is_held_until_it_ends() -> None:
    masker = StreamMasker()
    assert masker.feed("Write to jane") == "Write to "
    assert masker.feed(".doe@example") == ""
    assert masker.feed(".com today") == "[EMAIL] "
    assert masker.finish() == "today"


def test_after_a_digit_at_most_the_window_and_the_last_word_are_held() -> None:
    masker = StreamMasker()
    masker.feed("Order 42 is ready. ")
    masker.feed("word " * 100)
    assert masker.held <= WINDOW + len("word ")


def test_the_ssn_keyword_far_behind_its_digits_is_still_seen() -> None:
    answer = "ssn:" + " " * 500 + "123456789 done"
    released, rest = stream(list(answer))
    assert "".join(released) + rest == mask_pii(answer)
    assert "123456789" not in "".join(released) + rest


def test_masking_off_releases_every_chunk_as_it_comes() -> None:
    masker = StreamMasker(enabled=False)
    assert masker.feed("call 415-555-") == "call 415-555-"
    assert masker.finish() == ""


def scanned_per_character(length: int) -> float:
    """Characters the detectors read per answer character, feeding one character at a time."""
    scanned = 0

    def counting(text: str) -> list[PiiMatch]:
        nonlocal scanned
        scanned += len(text)
        return find_pii(text)

    unit = "Card 4111 1111 1111 1111, phone +44 20 7946 0958, mail a.b@example.com; more words here. "
    answer = (unit * (length // len(unit) + 1))[:length]
    masker = StreamMasker(find=counting)
    for char in answer:
        masker.feed(char)
    masker.finish()
    return scanned / length


def test_feeding_an_answer_costs_length_times_window_not_length_squared() -> None:
    short, long = scanned_per_character(2_000), scanned_per_character(16_000)
    assert long <= CONTEXT + 2 * WINDOW + 64
    assert long <= short * 1.25  # linear in the length: the work per character does not grow


def scanned_characters(repeats: int) -> int:
    """How many characters the detectors read while a long answer streams in 4-character chunks."""
    answer = "Call 0612345678 or write to a@b.io. " * repeats
    read = [0]

    def counting_find(text: str) -> list[PiiMatch]:
        read[0] += len(text)
        return find_pii(text)

    stream([answer[index : index + 4] for index in range(0, len(answer), 4)], StreamMasker(find=counting_find))
    return read[0]


def test_a_long_answer_streams_in_linear_time() -> None:
    # Work, not a timer: twice the answer costs about twice the detection (a re-scan of everything
    # held from the start would cost four times as much).
    assert scanned_characters(1000) < 2.5 * scanned_characters(500)
