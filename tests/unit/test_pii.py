"""Rule 9: the PII detectors, as properties. Each kind has generated positives that must be masked and
near-misses (failed checksums, impossible ranges, look-alike formats) that must be left alone."""

from __future__ import annotations

import ipaddress
import time
from typing import Literal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chatbot_security.privacy.pii import find_pii, mask_pii
from chatbot_security.privacy.pii_numbers import IBAN_LENGTHS, iban_valid, luhn_valid

LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"


def embedded(value: str) -> str:
    return f"please note {value} thanks"


# -- strategies -------------------------------------------------------------------------------
@st.composite
def emails(draw: st.DrawFn) -> str:
    atom = st.text(LOWER + DIGITS + "_+-", min_size=1, max_size=12)
    local = ".".join(draw(st.lists(atom, min_size=1, max_size=3)))
    label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
    domain = ".".join(draw(st.lists(label, min_size=1, max_size=3)))
    tld = draw(st.text(LOWER, min_size=2, max_size=6))
    return f"{local}@{domain}.{tld}"


def luhn_check_digit(body: str) -> str:
    for digit in DIGITS:
        if luhn_valid(body + digit):
            return digit
    raise AssertionError("unreachable")


@st.composite
def card_digits(draw: st.DrawFn, valid: bool = True) -> str:
    length = draw(st.sampled_from([13, 15, 16, 19]))
    body = draw(st.sampled_from("3456")) + draw(st.text(DIGITS, min_size=length - 2, max_size=length - 2))
    check = luhn_check_digit(body)
    if not valid:
        check = str((int(check) + draw(st.integers(1, 9))) % 10)
    return body + check


def card_layout(digits: str, separator: str) -> str:
    if not separator:
        return digits
    if len(digits) == 15:  # Amex 4-6-5
        return separator.join((digits[:4], digits[4:10], digits[10:]))
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


@st.composite
def ibans(draw: st.DrawFn, valid: bool = True) -> str:
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    bban = draw(st.text(DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=IBAN_LENGTHS[country] - 4,
                        max_size=IBAN_LENGTHS[country] - 4))  # fmt: skip
    numeric = int("".join(str(int(char, 36)) for char in bban + country + "00"))
    check = 98 - numeric % 97
    if not valid:
        check = (check + draw(st.integers(1, 96)) - 2) % 97 + 2
    compact = f"{country}{check:02d}{bban}"
    assert iban_valid(compact) is valid
    if draw(st.booleans()):
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


ssn_areas = st.integers(1, 899).filter(lambda area: area != 666)


@st.composite
def ssns(draw: st.DrawFn) -> str:
    separator = draw(st.sampled_from("- "))
    area, group, serial = draw(ssn_areas), draw(st.integers(1, 99)), draw(st.integers(1, 9999))
    return f"{area:03d}{separator}{group:02d}{separator}{serial:04d}"


@st.composite
def impossible_ssns(draw: st.DrawFn) -> str:
    area, group, serial = draw(ssn_areas), draw(st.integers(1, 99)), draw(st.integers(1, 9999))
    broken = draw(st.sampled_from(["area000", "area666", "area9xx", "group", "serial"]))
    area = {"area000": 0, "area666": 666, "area9xx": draw(st.integers(900, 999))}.get(broken, area)
    group = 0 if broken == "group" else group
    serial = 0 if broken == "serial" else serial
    return f"{area:03d}-{group:02d}-{serial:04d}"


@st.composite
def international_phones(draw: st.DrawFn) -> str:
    country = str(draw(st.integers(1, 999)))
    groups = draw(st.lists(st.text(DIGITS, min_size=2, max_size=4), min_size=2, max_size=4))
    while len(country) + sum(map(len, groups)) < 8:  # E.164: 8 to 15 digits with the country code
        groups.append("12")
    while len(country) + sum(map(len, groups)) > 15:
        groups.pop()
    separator = draw(st.sampled_from([" ", "-", "."]))
    prefix = draw(st.sampled_from(["+", "00"]))
    return prefix + country + separator + separator.join(groups)


# -- positives --------------------------------------------------------------------------------
@given(emails())
def test_email_addresses_are_masked(email: str) -> None:
    assert mask_pii(embedded(email)) == embedded("[EMAIL]")


@given(card_digits(), st.sampled_from(["", " ", "-"]))
def test_luhn_valid_card_numbers_are_masked(digits: str, separator: str) -> None:
    assert mask_pii(embedded(card_layout(digits, separator))) == embedded("[CARD]")


@given(ibans())
def test_checksum_valid_ibans_are_masked(iban: str) -> None:
    assert mask_pii(embedded(iban)) == embedded("[IBAN]")


@given(ssns())
def test_us_social_security_numbers_are_masked(ssn: str) -> None:
    assert mask_pii(embedded(ssn)) == embedded("[SSN]")


@given(st.ip_addresses(v=4))
def test_ipv4_addresses_are_masked(address: ipaddress.IPv4Address) -> None:
    assert mask_pii(embedded(str(address))) == embedded("[IP]")


@given(st.ip_addresses(v=6))
def test_ipv6_addresses_are_masked_in_full_form(address: ipaddress.IPv6Address) -> None:
    assert mask_pii(embedded(address.exploded)) == embedded("[IP]")


@given(st.ip_addresses(v=6).filter(lambda a: any(c.isdigit() for c in a.compressed) or a.compressed.count(":") > 3))
def test_ipv6_addresses_are_masked_in_short_form(address: ipaddress.IPv6Address) -> None:
    assert mask_pii(embedded(address.compressed)) == embedded("[IP]")


@given(international_phones())
def test_international_phone_numbers_are_masked(phone: str) -> None:
    assert mask_pii(embedded(phone)) == embedded("[PHONE]")


@pytest.mark.parametrize(
    "phone",
    ["+44 20 7946 0958", "+1 (415) 555-2671", "+49 (0)30 1234567", "0033 6 12 34 56 78", "+81-3-1234-5678",
     "(415) 555-2671", "415-555-2671", "415.555.2671", "020 7946 0958", "06 12 34 56 78", "0151-2345-6789"],
)  # fmt: skip
def test_common_phone_layouts_are_masked(phone: str) -> None:
    assert mask_pii(embedded(phone)) == embedded("[PHONE]")


# -- near-misses ------------------------------------------------------------------------------
@given(card_digits(valid=False), st.sampled_from(["", " ", "-"]))
def test_card_numbers_failing_luhn_are_not_masked(digits: str, separator: str) -> None:
    text = embedded(card_layout(digits, separator))
    assert mask_pii(text) == text


def _holds_a_card_number(text: str) -> bool:
    """A run of 13 to 19 digits that passes Luhn: the card detector rightly takes it, IBAN or not."""
    digits = "".join(character for character in text if character.isdigit())
    return any(
        luhn_valid(digits[start : start + length])
        for length in range(13, 20)
        for start in range(len(digits) - length + 1)
    )


@given(ibans(valid=False))
def test_ibans_with_a_wrong_checksum_are_not_masked(iban: str) -> None:
    assume(not _holds_a_card_number(iban))
    text = embedded(iban)
    assert mask_pii(text) == text


@given(impossible_ssns())
def test_never_assigned_social_security_numbers_are_not_masked(ssn: str) -> None:
    text = embedded(ssn)
    assert mask_pii(text) == text


@given(st.lists(st.integers(0, 255), min_size=4, max_size=4), st.integers(0, 3), st.integers(256, 999))
def test_dotted_quads_out_of_range_are_not_masked(octets: list[int], position: int, bad: int) -> None:
    octets[position] = bad
    text = embedded(".".join(map(str, octets)))
    assert mask_pii(text) == text


@given(st.dates())
def test_dates_are_not_masked(day: object) -> None:
    for layout in ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y"):
        text = embedded(day.strftime(layout))  # type: ignore[attr-defined]
        assert mask_pii(text) == text


@pytest.mark.parametrize(
    "text",
    ["user@localhost", "@mention", "a@b", "name at example dot com", "foo@bar.c",
     "1.2.3", "1.2.3.4.5", "v3.13.1", "12:30:45", "00:1A:2B:3C:4D:5E", "a::b", "std::vector",
     "123-456-7890", "+1 for this", "3+4=7", "order #123456", "1990-2020", "2024-01-15T10:30:00Z",
     "price 1,299.00", "ISBN 978-3-16-148410-0", "4111 1111 1111 1112", "DE89 3704 0044 0532 0130 01",
     "000-12-3456", "666-12-3456", "123-00-4567", "256.1.1.1", "01.02.2024"],
)  # fmt: skip
def test_look_alikes_are_not_masked(text: str) -> None:
    assert mask_pii(text) == text


# -- general ----------------------------------------------------------------------------------
DIGIT_CATEGORIES: tuple[Literal["Nd"]] = ("Nd",)  # the Unicode category of decimal digits


@given(st.text(alphabet=st.characters(exclude_categories=DIGIT_CATEGORIES, exclude_characters="@")))
def test_text_without_digits_or_at_signs_is_unchanged(text: str) -> None:
    assert mask_pii(text) == text


@given(st.text())
def test_masking_is_idempotent(text: str) -> None:
    once = mask_pii(text)
    assert mask_pii(once) == once


def test_several_kinds_in_one_message_are_all_masked() -> None:
    text = "I am jane@example.org, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, from 203.0.113.9"
    assert mask_pii(text) == "I am [EMAIL], card [CARD], IBAN [IBAN], from [IP]"
    assert [m.kind for m in find_pii(text)] == ["email", "card", "iban", "ip"]


@pytest.mark.parametrize(
    "text",
    ["a" * 4000, "1" * 4000, "a." * 2000, "a@" + "a" * 3998, "1 " * 2000, "1." * 2000, ":" * 4000, "+1 " * 1333],
    ids=["letters", "digits", "dotted", "at", "spaced-digits", "dotted-digits", "colons", "plus"],
)
def test_adversarial_input_is_masked_quickly(text: str) -> None:
    started = time.perf_counter()
    mask_pii(text)
    assert time.perf_counter() - started < 0.5


# -- layouts: detection on a normalised copy, masking of the original span --------------------
FULL_WIDTH = str.maketrans(DIGITS, "".join(chr(0xFF10 + digit) for digit in range(10)))
SPACES = [" ", "\u00a0", "\u202f", "\u2009", "\u2007", "\u3000"]  # ASCII, no-break, narrow, thin, figure, ideographic
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


def spread(value: str, separator: str) -> str:
    """The value's ASCII spaces replaced by another separator."""
    return value.replace(" ", separator)


def split_by(value: str, invisible: str, every: int) -> str:
    return invisible.join(value[i : i + every] for i in range(0, len(value), every))


@given(card_digits(), st.sampled_from([".", "  ", "_", "/", " ", "-"]))
def test_cards_in_any_printed_separator_are_masked(digits: str, separator: str) -> None:
    assert mask_pii(embedded(card_layout(digits, separator))) == embedded("[CARD]")


@given(card_digits(valid=False), st.sampled_from([".", "  ", "_", "/"]))
def test_cards_failing_luhn_are_not_masked_in_any_separator(digits: str, separator: str) -> None:
    text = embedded(card_layout(digits, separator))
    assert mask_pii(text) == text


@given(card_digits(), st.sampled_from(["", " "]))
def test_cards_in_full_width_digits_are_masked(digits: str, separator: str) -> None:
    assert mask_pii(embedded(card_layout(digits, separator).translate(FULL_WIDTH))) == embedded("[CARD]")


@given(card_digits(), st.sampled_from(["card", "Nr", "x"]), st.sampled_from(["", "exp", "thanks"]))
def test_cards_glued_to_a_word_are_masked(digits: str, before: str, after: str) -> None:
    assert mask_pii(f"my {before}{digits}{after} ok") == f"my {before}[CARD]{after} ok"


@given(card_digits(), st.sampled_from(SPACES))
def test_cards_grouped_by_any_unicode_space_are_masked(digits: str, space: str) -> None:
    assert mask_pii(embedded(card_layout(digits, space))) == embedded("[CARD]")


@given(card_digits(), st.sampled_from(ZERO_WIDTH), st.integers(1, 5))
def test_cards_split_by_zero_width_characters_are_masked(digits: str, invisible: str, every: int) -> None:
    assert mask_pii(embedded(split_by(digits, invisible, every))) == embedded("[CARD]")


@given(card_digits(valid=False), st.sampled_from(ZERO_WIDTH + SPACES[1:]))
def test_cards_failing_luhn_are_not_masked_whatever_splits_them(digits: str, separator: str) -> None:
    text = embedded(split_by(digits, separator, 4))
    assert mask_pii(text) == text


@given(ibans(), st.sampled_from(["-", "\u00a0", "\u202f", "\u2009"]))
def test_ibans_grouped_by_dashes_or_unicode_spaces_are_masked(iban: str, separator: str) -> None:
    grouped = " ".join(iban.replace(" ", "")[i : i + 4] for i in range(0, len(iban.replace(" ", "")), 4))
    assert mask_pii(embedded(spread(grouped, separator))) == embedded("[IBAN]")


@given(ibans(valid=False), st.sampled_from(["-", "\u00a0"]))
def test_ibans_failing_mod_97_are_not_masked_in_any_grouping(iban: str, separator: str) -> None:
    compact = iban.replace(" ", "")
    text = embedded(separator.join(compact[i : i + 4] for i in range(0, len(compact), 4)))
    assert mask_pii(text) == text


@given(ibans(), st.sampled_from(ZERO_WIDTH))
def test_ibans_split_by_zero_width_characters_are_masked(iban: str, invisible: str) -> None:
    assert mask_pii(embedded(split_by(iban.replace(" ", ""), invisible, 3))) == embedded("[IBAN]")


@st.composite
def nanp_digits(draw: st.DrawFn, valid: bool = True) -> str:
    area = draw(st.integers(200, 989).filter(lambda a: str(a)[1] != "9" and str(a)[1:] != "11"))
    exchange = draw(st.integers(200, 999).filter(lambda e: str(e)[1:] != "11"))
    line = draw(st.integers(0, 9999))
    if not valid:
        broken = draw(st.sampled_from(["area", "exchange", "area-n11", "area-x9x"]))
        area = {"area": draw(st.integers(100, 199)), "area-n11": draw(st.integers(2, 9)) * 100 + 11}.get(broken, area)
        area = draw(st.integers(2, 9)) * 100 + 90 + draw(st.integers(0, 9)) if broken == "area-x9x" else area
        exchange = draw(st.integers(0, 199)) if broken == "exchange" else exchange
    return f"{area:03d}{exchange:03d}{line:04d}"


@given(nanp_digits())
def test_bare_ten_digit_north_american_numbers_are_masked(digits: str) -> None:
    assert mask_pii(embedded(digits)) == embedded("[PHONE]")
    assert mask_pii(embedded("1" + digits)) == embedded("[PHONE]")


@given(nanp_digits(valid=False))
def test_bare_ten_digit_numbers_that_are_not_north_american_stay(digits: str) -> None:
    # (an area code starting with 0 is a national number with a trunk 0, or "00" an international one)
    text = embedded(digits)
    assert mask_pii(text) == text


@given(st.integers(1_000_000_000, 1_999_999_999))
def test_unix_timestamps_stay(timestamp: int) -> None:
    text = f"created at {timestamp} seconds"
    assert mask_pii(text) == text


@given(nanp_digits())
def test_numbers_after_a_hash_are_identifiers_not_phones(digits: str) -> None:
    for text in (f"order #{digits} shipped", f"ticket # {digits} open"):
        assert mask_pii(text) == text


@given(nanp_digits(), st.sampled_from(["-", ".", " "]), st.sampled_from(SPACES[1:] + ZERO_WIDTH))
def test_north_american_numbers_with_a_trunk_1_are_masked(digits: str, separator: str, odd: str) -> None:
    phone = separator.join(("1", digits[:3], digits[3:6], digits[6:]))
    assert mask_pii(embedded(phone)) == embedded("[PHONE]")
    assert mask_pii(embedded(phone.replace(separator, odd) if separator == " " else phone)) == embedded("[PHONE]")


@given(st.integers(1, 9), st.text(DIGITS, min_size=8, max_size=9))
def test_national_numbers_with_one_trunk_zero_are_masked(first: int, rest: str) -> None:
    assert mask_pii(embedded(f"0{first}{rest}")) == embedded("[PHONE]")


@given(ssns(), st.sampled_from(["SSN ", "ssn: ", "SSN#", "Social Security Number ", "social security no. "]))
def test_nine_digit_ssns_after_a_keyword_are_masked(ssn: str, keyword: str) -> None:
    digits = ssn.replace("-", "").replace(" ", "")
    assert mask_pii(embedded(keyword + digits)) == embedded(keyword + "[SSN]")


@given(impossible_ssns())
def test_never_assigned_ssns_stay_after_a_keyword_too(ssn: str) -> None:
    text = embedded("SSN " + ssn.replace("-", ""))
    assert mask_pii(text) == text


@given(ssns())
def test_ssns_with_dots_are_masked(ssn: str) -> None:
    assert mask_pii(embedded(ssn.replace("-", ".").replace(" ", "."))) == embedded("[SSN]")


@given(ssns(), st.sampled_from(SPACES[1:]))
def test_ssns_grouped_by_unicode_spaces_are_masked(ssn: str, space: str) -> None:
    assert mask_pii(embedded(ssn.replace("-", " ").replace(" ", space))) == embedded("[SSN]")


@given(international_phones(), st.sampled_from(SPACES[1:] + ZERO_WIDTH))
def test_international_phones_with_odd_spaces_or_zero_width_splits_are_masked(phone: str, odd: str) -> None:
    assert mask_pii(embedded(phone.replace(" ", odd))) == embedded("[PHONE]")


@pytest.mark.parametrize(
    ("text", "masked"),
    [("4111 1111 1111 1111".translate(FULL_WIDTH), "[CARD]"), ("call 4155552671 now", "call [PHONE] now"),
     ("call 1-415-555-2671", "call [PHONE]"), ("tel 0612345678", "tel [PHONE]"), ("SSN 078051120", "SSN [SSN]"),
     ("id 123.45.6789", "id [SSN]"), ("4111.1111.1111.1111", "[CARD]"), ("4111  1111  1111  1111", "[CARD]"),
     ("4111_1111_1111_1111", "[CARD]"), ("4111/1111/1111/1111", "[CARD]"), ("card4111111111111111", "card[CARD]"),
     ("DE89-3704-0044-0532-0130-00", "[IBAN]"), ("4111\u00a01111\u202f1111\u20091111", "[CARD]"),
     ("41\u200b11 1111 11\u200d11 1111", "[CARD]"), ("٤١١١١١١١١١١١١١١١", "[CARD]")],
)  # fmt: skip
def test_the_layouts_of_the_review_are_masked(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


words_without_pii = st.text(
    alphabet=st.characters(categories=("L", "P", "Zs"), exclude_characters="@:\uff20\uff1a\ufe6b"), max_size=12
)


@given(card_digits(), words_without_pii, words_without_pii)
def test_text_around_a_masked_value_is_kept_exactly(digits: str, before: str, after: str) -> None:
    # The span is mapped back to the original: text that normalisation would change stays as written
    text = f"\ufb01\u2460\u00a0{before} {split_by(digits, chr(0x200B), 4)} {after}\u3000\uff38"
    assert mask_pii(text) == f"\ufb01\u2460\u00a0{before} [CARD] {after}\u3000\uff38"
