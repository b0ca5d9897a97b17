"""A compact text form for skill conditions: ``billing>=3 & (es>=2 | en>=4) & !trainee``."""

from __future__ import annotations

import re

from omniroute.errors import InvalidInputError
from omniroute.model import AllOf, AnyOf, Condition, Not, Skill

__all__ = ["format_condition", "parse_condition"]

_TOKEN = re.compile(r"\s*(?:(?P<op>>=|[&|!()])|(?P<num>\d+)|(?P<name>[A-Za-z_][\w.\-]*))")


def parse_condition(text: str) -> Condition:
    """Parse ``skill>=level`` terms joined by ``&`` (and), ``|`` (or), ``!`` (not)
    and parentheses; a bare ``skill`` means level 1 or above. ``&`` binds
    tighter than ``|``."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InvalidInputError(
                f"condition: unexpected {text[pos : pos + 10]!r} at position {pos} in {text!r}"
            )
        tokens.append(m.group(m.lastgroup or "op"))
        pos = m.end()
    parser = _Parser(tokens, text)
    cond = parser.either()
    if parser.i != len(tokens):
        raise InvalidInputError(f"condition: unexpected {tokens[parser.i]!r} in {text!r}")
    return cond


class _Parser:
    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens, self.text, self.i = tokens, text, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise InvalidInputError(f"condition: {self.text!r} ends too early")
        self.i += 1
        return tok

    def either(self) -> Condition:
        parts = [self.both()]
        while self.peek() == "|":
            self.take()
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else AnyOf(of=parts)

    def both(self) -> Condition:
        parts = [self.unary()]
        while self.peek() == "&":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else AllOf(of=parts)

    def unary(self) -> Condition:
        tok = self.take()
        if tok == "!":
            return Not(condition=self.unary())
        if tok == "(":
            inner = self.either()
            if self.take() != ")":
                raise InvalidInputError(f"condition: missing ')' in {self.text!r}")
            return inner
        if not (tok[0].isalpha() or tok[0] == "_"):
            raise InvalidInputError(f"condition: expected a skill name, got {tok!r} in {self.text!r}")
        level = 1
        if self.peek() == ">=":
            self.take()
            num = self.take()
            if not num.isdigit() or not 0 <= int(num) <= 255:
                raise InvalidInputError(
                    f"condition: expected a level from 0 to 255 after {tok}>=, got {num!r}"
                )
            level = int(num)
        return Skill(skill=tok, min_level=level)


def format_condition(cond: Condition) -> str:
    """The text form of a condition (the inverse of :func:`parse_condition`)."""
    if isinstance(cond, Skill):
        return f"{cond.skill}>={cond.min_level}"
    if isinstance(cond, Not):
        return f"!{format_condition(cond.condition)}"
    if not cond.of:
        return "true" if isinstance(cond, AllOf) else "false"
    sep = " & " if isinstance(cond, AllOf) else " | "
    return "(" + sep.join(format_condition(c) for c in cond.of) + ")"
