"""Count the work of a regular expression, deterministically.

Python's ``re`` is a backtracking engine and says nothing about how hard it worked. This module runs
the same parse tree (``re._parser``) with the same semantics and the same order of choices (greedy,
lazy and possessive repeats, atomic groups, alternation, look-ahead and fixed-width look-behind,
back-references, word boundaries), from every start position as ``finditer`` does, and counts each
step: each attempt to match a node at a position. The engine's own shortcuts (a literal prefix search,
for example) only make it faster, so the count bounds what ``re`` does up to a constant, and a pattern
whose count grows like the square of its input is one that a long crafted string can stall.

It is a test instrument, not a matcher: tests compare its matches with ``re``'s to prove it models the
pattern they measure.
"""

from __future__ import annotations

import re
import re._constants as sre  # type: ignore[import-not-found]  # no stubs for re's private modules
import re._parser as sre_parse  # type: ignore[import-not-found]
import sys
from collections.abc import Iterator
from typing import Any


class WorkLimitExceeded(Exception):
    pass


class RegexWork:
    def __init__(self, pattern: re.Pattern[str], limit: int = 5_000_000) -> None:
        self.pattern = pattern
        self.tree = list(sre_parse.parse(pattern.pattern, pattern.flags))
        self.ignore_case = bool(pattern.flags & re.IGNORECASE)
        self.limit = limit
        self.steps = 0
        self.text = ""
        self.groups: dict[int, tuple[int, int] | None] = {}

    def finditer(self, text: str) -> list[tuple[int, int]]:
        """Every match's span, as ``pattern.finditer`` finds them; ``steps`` counts the work."""
        self.text, self.steps = text, 0
        spans: list[tuple[int, int]] = []
        position = 0
        previous_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous_limit, 50_000))
        try:
            while position <= len(text):
                self.groups = {}
                end = next(self._sequence(self.tree, 0, position), None)
                if end is None:
                    position += 1
                    continue
                spans.append((position, end))
                position = end if end > position else position + 1
        finally:
            sys.setrecursionlimit(previous_limit)
        return spans

    # -- the matcher ------------------------------------------------------------------------
    def _step(self) -> None:
        self.steps += 1
        if self.steps > self.limit:
            raise WorkLimitExceeded(f"{self.pattern.pattern!r}: more than {self.limit} steps")

    def _sequence(self, items: list[Any], index: int, position: int) -> Iterator[int]:
        """End positions of ``items[index:]`` matched at ``position``, in the engine's order."""
        self._step()
        if index == len(items):
            yield position
            return
        op, argument = items[index]
        for end in self._node(op, argument, position):
            yield from self._sequence(items, index + 1, end)

    def _node(self, op: Any, argument: Any, position: int) -> Iterator[int]:
        """End positions of one node matched at ``position``."""
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
            text = self.text
            if position < len(text) and self._char_matches(op, argument, text[position]):
                yield position + 1
        elif op is sre.SUBPATTERN:
            yield from self._group(argument, position)
        elif op is sre.BRANCH:
            for alternative in argument[1]:
                yield from self._sequence(list(alternative), 0, position)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, sub = argument
            ends = self._repeat(list(sub), low, high, 0, position, op is not sre.MIN_REPEAT)
            yield from _first(ends) if op is sre.POSSESSIVE_REPEAT else ends
        elif op is sre.ATOMIC_GROUP:
            yield from _first(self._sequence(list(argument), 0, position))
        elif op in (sre.ASSERT, sre.ASSERT_NOT, sre.AT):
            yield from self._zero_width(op, argument, position)
        elif op is sre.GROUPREF:
            span = self.groups.get(argument)
            if span is not None and self.text.startswith(self.text[span[0] : span[1]], position):
                yield position + span[1] - span[0]
        else:
            raise NotImplementedError(f"{op} in {self.pattern.pattern!r}")

    def _zero_width(self, op: Any, argument: Any, position: int) -> Iterator[int]:
        holds = self._at(argument, position) if op is sre.AT else self._lookaround(argument[0], argument[1], position)
        if holds == (op is not sre.ASSERT_NOT):
            yield position

    def _group(self, argument: Any, position: int) -> Iterator[int]:
        group, _, _, sub = argument
        for end in self._sequence(list(sub), 0, position):
            saved = self.groups.get(group)
            if group is not None:
                self.groups[group] = (position, end)
            yield end
            if group is not None:
                self.groups[group] = saved

    def _repeat(self, sub: list[Any], low: int, high: int, count: int, position: int, greedy: bool) -> Iterator[int]:
        self._step()
        more = high == sre.MAXREPEAT or count < high
        if not greedy and count >= low:
            yield position
        if more:
            for end in self._sequence(sub, 0, position):
                if end == position and count >= low:
                    continue  # an empty iteration ends the repeat, as in the engine
                yield from self._repeat(sub, low, high, count + 1, end, greedy)
        if greedy and count >= low:
            yield position

    def _lookaround(self, direction: int, sub: Any, position: int) -> bool:
        if direction == 1:
            return next(self._sequence(list(sub), 0, position), None) is not None
        width, widest = sub.getwidth()
        assert width == widest, "look-behind of fixed width only"
        start = position - width
        return start >= 0 and any(end == position for end in self._sequence(list(sub), 0, start))

    def _at(self, code: Any, position: int) -> bool:
        text = self.text
        if code in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING):
            return position == 0
        if code is sre.AT_END:
            return position == len(text) or (position == len(text) - 1 and text[position] == "\n")
        if code is sre.AT_END_STRING:
            return position == len(text)
        before = position > 0 and _is_word(text[position - 1])
        after = position < len(text) and _is_word(text[position])
        if code is sre.AT_BOUNDARY:
            return before != after
        if code is sre.AT_NON_BOUNDARY:
            return before == after
        raise NotImplementedError(code)

    def _char_matches(self, op: Any, argument: Any, char: str) -> bool:
        if op is sre.ANY:
            return char != "\n"
        if op is sre.LITERAL:
            return self._same(char, chr(argument))
        if op is sre.NOT_LITERAL:
            return not self._same(char, chr(argument))
        return self._in_set(argument, char)

    def _same(self, char: str, other: str) -> bool:
        return char == other or (self.ignore_case and char.lower() == other.lower())

    def _in_set(self, items: list[Any], char: str) -> bool:
        negate = bool(items) and items[0][0] is sre.NEGATE
        found = False
        candidates = {char, char.lower(), char.upper()} if self.ignore_case else {char}
        for op, argument in items[1:] if negate else items:
            if op is sre.LITERAL:
                found = chr(argument) in candidates
            elif op is sre.RANGE:
                found = any(argument[0] <= ord(candidate) <= argument[1] for candidate in candidates)
            elif op is sre.CATEGORY:
                found = _category(argument, char)
            else:
                raise NotImplementedError(op)
            if found:
                break
        return found != negate


def _first(ends: Iterator[int]) -> Iterator[int]:
    """Only the first way: what a possessive repeat or an atomic group keeps."""
    end = next(ends, None)
    if end is not None:
        yield end


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _category(code: Any, char: str) -> bool:
    if code is sre.CATEGORY_DIGIT:
        return char.isdecimal()
    if code is sre.CATEGORY_NOT_DIGIT:
        return not char.isdecimal()
    if code is sre.CATEGORY_WORD:
        return _is_word(char)
    if code is sre.CATEGORY_NOT_WORD:
        return not _is_word(char)
    if code is sre.CATEGORY_SPACE:
        return char.isspace()
    if code is sre.CATEGORY_NOT_SPACE:
        return not char.isspace()
    raise NotImplementedError(code)
