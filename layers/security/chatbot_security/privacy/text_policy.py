"""Which invisible and control Unicode characters a message may hold (docs/data-protection.md).

Invisible characters are where hidden instructions travel: Unicode tag characters spell ASCII that a
model reads and a person does not see ("ASCII smuggling"), runs of variation selectors hide bytes after
a visible character, bidirectional controls make text read differently from what it holds (Trojan
Source). They are refused, except where a language or an emoji sequence needs them:

- always refused: the bidirectional marks and controls (U+200E, U+200F, U+061C, U+202A-U+202E,
  U+2066-U+2069), zero-width and invisible characters (U+200B, U+2060-U+2064, U+206A-U+206F, U+180E,
  U+FEFF, U+FFF9-U+FFFB), the Unicode line and paragraph separators (U+2028, U+2029; newline is the
  line break), surrogates and noncharacters (U+FDD0-U+FDEF and the last two code points of every plane);
- tag characters (U+E0000-U+E007F) only as the tag sequence of a subdivision flag: U+1F3F4, 3 to 7
  lowercase letters or digits as tags, U+E007F (so a flag cannot carry more than a subdivision code);
- U+200D (zero-width joiner) only between two emoji, or between letters of a script that joins with
  it (Arabic, Syriac, N'Ko, the Indic scripts, Sinhala, Myanmar, Khmer, Mongolian);
- U+200C (zero-width non-joiner) only between two letters (Persian and the Indic scripts need it);
- a variation selector (U+FE00-U+FE0F, U+E0100-U+E01EF) only right after a visible character, one each.

C0 and C1 controls are the request model's own pattern (chatbot_security.conversation.models).
A message whose characters are all invisible (spaces, format characters, lone combining marks,
Hangul fillers, the blank Braille
pattern) is blank.
"""

from __future__ import annotations

import re
import unicodedata

_TAG_FIRST, _TAG_LAST = 0xE0000, 0xE007F
_SUBDIVISION_FLAG = re.compile("\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{3,7}\U000e007f")
_NONCHARACTERS = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
# Every character the rules above are about; anything else is never refused.
_SUSPECT = re.compile(
    "[\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufdd0-\ufdef\ufe00-\ufe0f\ufeff\ufff9-\ufffb"
    f"\ud800-\udfff\U000e0000-\U000e007f\U000e0100-\U000e01ef{_NONCHARACTERS}]"
)
_ZWJ, _ZWNJ = "\u200d", "\u200c"
# Scripts whose letters join with U+200D (code point ranges of their blocks).
_JOINING_SCRIPTS = (
    (0x0600, 0x08FF),  # Arabic, Syriac, Arabic Supplement, Thaana, N'Ko, Samaritan, Mandaic, Arabic Extended
    (0x0900, 0x0DFF),  # Devanagari to Sinhala
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x18AF),  # Khmer, Mongolian
    (0xA8E0, 0xA8FF),  # Devanagari Extended
    (0xFB50, 0xFDFF),  # Arabic Presentation Forms-A
    (0xFE70, 0xFEFE),  # Arabic Presentation Forms-B
)
_EMOJI_RANGES = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x3299),  # punctuation emoji, arrows, technical, dingbats, symbols (many are emoji-capable)
    (0x1F000, 0x1FAFF),
)
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
# Letters and symbols that render as nothing.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _within(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(char)
    return any(first <= code <= last for first, last in ranges)


def _is_emoji(char: str) -> bool:
    """An emoji, an emoji presentation selector or a skin-tone modifier (ends of a ZWJ sequence)."""
    return char == "\ufe0f" or (_within(char, _EMOJI_RANGES) and unicodedata.category(char) in ("So", "Sk"))


def _is_letter(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


def _is_joining_letter(char: str) -> bool:
    return _is_letter(char) and _within(char, _JOINING_SCRIPTS)


def _is_visible_base(char: str) -> bool:
    return not (
        char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Mn") or _within(char, _VARIATION_SELECTORS)
    )


def refused_character(text: str) -> str | None:
    """The name of the rule that the first refused character breaks, or None when all are allowed.
    Never the character itself: the caller may echo the reason."""
    flags = [match.span() for match in _SUBDIVISION_FLAG.finditer(text)] if "\U0001f3f4" in text else []
    for match in _SUSPECT.finditer(text):
        index = match.start()
        char = match.group()
        before = text[index - 1] if index else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        if _TAG_FIRST <= ord(char) <= _TAG_LAST:
            if not any(start < index < end for start, end in flags):
                return "tag character outside a subdivision flag"
        elif char == _ZWJ:
            between_emoji = bool(before and after) and _is_emoji(before) and _is_emoji(after)
            between_letters = bool(before and after) and _is_joining_letter(before) and _is_joining_letter(after)
            if not (between_emoji or between_letters):
                return "zero-width joiner outside an emoji sequence or a joining script"
        elif char == _ZWNJ:
            if not (before and after and _is_letter(before) and _is_letter(after)):
                return "zero-width non-joiner outside a word"
        elif _within(char, _VARIATION_SELECTORS):
            if not (before and _is_visible_base(before)):
                return "variation selector without a character to select"
        else:
            return "invisible, bidirectional or noncharacter code point"
    return None


def _is_invisible(char: str) -> bool:
    return (
        char.isspace()
        or unicodedata.category(char) in ("Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp", "Cs")
        or char in _BLANK_LOOKING
        or _within(char, _VARIATION_SELECTORS)
    )


def is_visibly_blank(text: str) -> bool:
    """True when no character of ``text`` shows (an empty text too)."""
    return all(_is_invisible(char) for char in text)
