"""Detectors of personal numbers in normalised text: payment cards, IBANs, US social security numbers,
IP addresses and phone numbers (the masking itself and the normalisation are in :mod:`.pii`).

Each finds candidates with a regular expression anchored by a look-behind (one scan, not one per
start) and then validates them, so that look-alikes stay untouched.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

# -- payment cards ----------------------------------------------------------------------------
# A run of up to 39 digits (a card is 13 to 19; the run may also hold a quantity before it, or an
# expiry date or a CVV after it), its groups separated by one of " ", "  ", "-", ".", "_" or "/". A
# card may be glued to a word ("card4111111111111111"), never to other digits.
_CARD_SEPARATOR = r"(?:[._/-]| {1,2}+)"
_CARD = re.compile(
    rf"(?<![\d+.-])(?<!\d[ ._/-])(?<!\d  )[1-9](?:{_CARD_SEPARATOR}?\d){{12,38}}(?!\d|{_CARD_SEPARATOR}\d|,\d)"
)
_DIGIT_GROUPS = re.compile(r"\d+|\D+")
_DIGIT_RUN = re.compile(r"\d+")
# Digit groups as cards are printed: 4-4-4-4(-3), 4-4-4-1..4, Amex 4-6-5, Diners 4-6-4.
_CARD_GROUPS = frozenset({(4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), *((4, 4, 4, last) for last in range(1, 5))})


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _split(candidate: str) -> tuple[list[str], set[str]]:
    """The digit groups of a candidate and the separators between them."""
    parts = _DIGIT_GROUPS.findall(candidate)
    return parts[0::2], set(parts[1::2])


def _card_layout(candidate: str) -> bool:
    """13 to 19 digits, together or grouped as cards are printed (one kind of separator)."""
    groups, separators = _split(candidate)
    if len(separators) > 1 or (separators and tuple(map(len, groups)) not in _CARD_GROUPS):
        return False
    return 13 <= sum(map(len, groups)) <= 19


def _luhn_card(candidate: str) -> bool:
    return luhn_valid("".join(_split(candidate)[0]))


def _card_inside(candidate: str) -> tuple[int, int] | None:
    """The longest (then leftmost) card between digit-group boundaries of a run that is not one itself:
    "2 4111 1111 1111 1111" (a quantity before it), "4111 1111 1111 1111 12/26" (an expiry after it)."""
    bounds = [match.span() for match in _DIGIT_RUN.finditer(candidate)]
    starts = [start for start, _ in bounds if candidate[start] != "0"]
    ends = [end for _, end in bounds]
    spans = [(start, end) for start in starts for end in ends if end > start]
    for start, end in sorted(spans, key=lambda span: (span[0] - span[1], span[0])):
        if _card_layout(candidate[start:end]) and _luhn_card(candidate[start:end]):
            return start, end
    return None


def cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(text):
        candidate = match.group()
        if _card_layout(candidate):  # a card's own shape: it is a card or nothing
            if _luhn_card(candidate):
                yield match.span()
            continue
        inside = _card_inside(candidate)
        if inside is not None:
            yield match.start() + inside[0], match.start() + inside[1]


# -- IBAN -------------------------------------------------------------------------------------
# Lengths from the SWIFT IBAN registry.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
# Compact, or in groups separated by spaces or dashes.
_IBAN = re.compile(r"(?<![\w])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){10,30}")


def iban_valid(compact: str) -> bool:
    """Country length and ISO 7064 mod-97 checksum of an IBAN without spaces."""
    compact = compact.upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN.finditer(text):
        length = IBAN_LENGTHS.get(match.group()[:2].upper())
        if length is None:
            continue
        # The greedy match may run into the next word: keep exactly the country's length.
        seen, end = 0, match.start()
        while end < match.end() and seen < length:
            seen += text[end] not in " -"
            end += 1
        if seen != length or (end < len(text) and text[end].isalnum()):
            continue
        if iban_valid(text[match.start() : end].replace(" ", "").replace("-", "")):
            yield match.start(), end


# -- US social security numbers ---------------------------------------------------------------
# Not part of a longer run of digit groups (a phone number written 001 01 0001 12, say).
# AAA-GG-SSSS with dashes, spaces or dots; nine digits in a row only right after a keyword.
_SSN = re.compile(r"(?<![\w+-])(?<!\d[ .-])(\d{3})([- .])(\d{2})\2(\d{4})(?![\w-]|[., -]\d)")
_SSN_AFTER_KEYWORD = re.compile(
    r"(?i)\b(?:ssn|ss#|social security(?: number| no\.?)?)(?:\s*+#)?(?:\s*+[:=])?\s*+"
    r"(\d{3})(\d{2})(\d{4})(?![\w-]|[.,]\d)"
)


_SSN_LAYOUT = re.compile(r"\d{3}([- .])\d{2}\1\d{4}")


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Numbers the SSA never assigns: area 000, 666 or 900-999, group 00, serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ssns(text: str) -> Iterator[tuple[int, int]]:
    for match in _SSN.finditer(text):
        area, _, group, serial = match.groups()
        if ssn_valid(area, group, serial):
            yield match.span()
    for match in _SSN_AFTER_KEYWORD.finditer(text):
        if ssn_valid(*match.groups()):
            yield match.start(1), match.end(3)


# -- IP addresses -----------------------------------------------------------------------------
_IPV4 = re.compile(r"(?<![\w.+])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?:%[A-Za-z0-9_.]+)?(?![\w:])"
)


def ips(text: str) -> Iterator[tuple[int, int]]:
    yield from ipv6s(text)  # first: "::ffff:192.0.2.1" is one address, not an IPv4 inside
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        yield match.span()


def ipv6s(text: str) -> Iterator[tuple[int, int]]:
    for match in _IPV6.finditer(text):
        candidate = match.group()
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        # "a::b" (a scope operator in code) is a valid address but hardly ever meant as one.
        groups = [group for group in candidate.split("%")[0].split(":") if group]
        if len(groups) >= 3 or any(char.isdigit() for char in candidate):
            yield match.span()


# -- phone numbers ----------------------------------------------------------------------------
# International: "+" or "00", a country code, then digit groups (one separator at most between
# them, "(0)" trunk notation allowed): +44 20 7946 0958, +1 (415) 555-2671, 0049-30-1234567.
_PHONE_INTERNATIONAL = re.compile(
    r"(?<![\w+])(?<!\d[ .\-/])(?:\+|00)[1-9]\d{0,3}(?:[ .\-/]?(?:\(\d{1,4}+\)|\d{1,12}+)){1,8}(?![\w]|[.,]\d)"
)
# North American: (415) 555-2671, 415-555-2671, 415.555.2671, 1-415-555-2671 (area and exchange codes
# start 2-9).
_PHONE_NANP = re.compile(
    r"(?<![\w+\-.(])(?:1[-. ]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[-.\s])[2-9]\d{2}[-.\s]\d{4}(?![\w-]|[.,]\d)"
)
# Bare digits: 10 (or 11 after a 1) that form a valid North American number, or 10 to 11 that start
# with one trunk 0 as national numbers do in most of Europe (0612345678, 02079460958). A number
# after "#" is an identifier, not a phone number.
_PHONE_BARE = re.compile(r"(?<![\w+\-.,/#])(?<!# )(?<!\d[ .\-/])(1?[2-9]\d{9}|0[1-9]\d{8,9})(?![\w-]|[.,/]\d)")
_NANP_BARE = re.compile(r"1?([2-9][0-8]\d)([2-9]\d\d)\d{4}")
# National with a trunk 0, grouped: 020 7946 0958, 06 12 34 56 78, 0151-2345-6789.
_PHONE_TRUNK = re.compile(r"(?<![\w+\-./])(?<!\d )0[1-9]\d{0,3}(?:[ .\-/]\d{2,8}){1,5}(?![\w-]|[.,/]\d)")


def nanp_valid(digits: str) -> bool:
    """A North American number: area code NXX (second digit not 9, not N11), exchange NXX (not N11)."""
    match = _NANP_BARE.fullmatch(digits)
    return match is not None and not any(code[1:] == "11" for code in match.groups())


def phones(text: str) -> Iterator[tuple[int, int]]:
    for match in _PHONE_INTERNATIONAL.finditer(text):
        digits = sum(char.isdigit() for char in match.group().removeprefix("00"))
        if 8 <= digits <= 15:  # E.164: at most 15 digits, country code included
            yield match.span()
    yield from (match.span() for match in _PHONE_NANP.finditer(text))
    for match in _PHONE_BARE.finditer(text):
        bare = match.group()
        if bare.startswith("0") or nanp_valid(bare):
            yield match.span()
    for match in _PHONE_TRUNK.finditer(text):
        candidate = match.group()
        separators = {char for char in candidate if not char.isdigit()}
        if _SSN_LAYOUT.fullmatch(candidate):
            continue  # the SSN's layout: a number the SSA never assigns is not a phone number either
        if len(separators) == 1 and 9 <= sum(char.isdigit() for char in candidate) <= 12:
            yield match.span()


# Earlier detectors win where candidates overlap (an IBAN's digits are not also a phone number).
