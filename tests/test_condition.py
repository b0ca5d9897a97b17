"""The text form of skill conditions."""

from __future__ import annotations

import pytest

import omniroute as o


def test_parse_and_format_round_trip() -> None:
    cond = o.parse_condition("billing>=3 & (es>=2 | en>=4) & !trainee")
    assert cond == o.AllOf(
        of=[
            o.Skill(skill="billing", min_level=3),
            o.AnyOf(of=[o.Skill(skill="es", min_level=2), o.Skill(skill="en", min_level=4)]),
            o.Not(condition=o.Skill(skill="trainee", min_level=1)),
        ]
    )
    assert o.format_condition(cond) == "(billing>=3 & (es>=2 | en>=4) & !trainee>=1)"
    assert o.parse_condition(o.format_condition(cond)) == cond


def test_and_binds_tighter_than_or() -> None:
    assert o.parse_condition("a | b & c") == o.AnyOf(
        of=[o.Skill(skill="a"), o.AllOf(of=[o.Skill(skill="b"), o.Skill(skill="c")])]
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("billing>=", "ends too early"),
        ("billing>=300", "level from 0 to 255"),
        ("(a & b", "ends too early"),
        ("(a & b c", r"missing '\)'"),
        ("a b", "unexpected 'b'"),
        ("a & $", "unexpected"),
        (">=3", "expected a skill name"),
    ],
)
def test_bad_conditions_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(o.InvalidInputError, match=message):
        o.parse_condition(text)
