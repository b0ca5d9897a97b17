"""Loading queues, skills and agents from TOML and YAML, and rejecting bad files precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

import omniroute as o

GOOD_TOML = """
seed = 7

[[channels]]
name = "voice"
cost = 60

[[channels]]
name = "chat"
cost = 20
max_per_agent = 3

[[queues]]
name = "billing"
strategy = { kind = "most_skilled" }
aging_per_second = 0.5
steps = [
  { after_seconds = 30, action = { kind = "lower_level", skill = "billing", min_level = 1 } },
  { after_seconds = 60, action = { kind = "add_queue", queue = "general" } },
]

[[queues]]
name = "general"

[[agents]]
id = "ann"
skills = { billing = 4, en = 5 }
queues = { billing = 2, general = 0 }
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_file_loads_and_drives_an_engine(tmp_path: Path) -> None:
    config = o.load_config(write(tmp_path, "centre.toml", GOOD_TOML))
    assert config.seed == 7
    assert config.queues[0].strategy == o.MostSkilled()
    assert config.queues[0].steps[1].action == o.AddQueue(queue="general")
    engine = o.Engine(config)
    assert engine.process([], now=0.0).errors == []


def test_the_same_centre_in_yaml(tmp_path: Path) -> None:
    text = """
channels: [{name: voice, cost: 60}]
queues:
  - name: general
    steps:
      - after_seconds: 10
        action: {kind: add_condition, condition: {op: skill, skill: senior, min_level: 2}}
agents:
  - {id: ann, queues: {general: 0}, skills: {senior: 3}}
"""
    config = o.load_config(write(tmp_path, "centre.yaml", text))
    assert config.queues[0].steps[0].action == o.AddCondition(condition=o.Skill(skill="senior", min_level=2))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            ("after_seconds = 60", "after_seconds = -5"),
            r"queues\[0\]\.steps\[1\]\.after_seconds: expected a number ≥ 0",
        ),
        (("cost = 20", 'cost = "cheap"'), r"channels\[1\]\.cost: expected a whole number, got str"),
        (
            ('queue = "general"', 'queue = "nowhere"'),
            r"queues\[0\]\.steps\[1\]\.action\.queue: unknown queue",
        ),
        (
            ("after_seconds = 30", "after_seconds = 90"),
            r"queues\[0\]\.steps\[1\]\.after_seconds: steps must be in order",
        ),
        (
            ("aging_per_second", "ageing_per_second"),
            r"queues\[0\]: object contains unknown field ageing_per_second",
        ),
        (
            ('kind = "most_skilled"', 'kind = "psychic"'),
            r"queues\[0\]\.strategy\.kind: invalid value 'psychic'",
        ),
        (
            ("billing = 4, en = 5", "billing = 0, en = 5"),
            r"agents\[0\]\.skills\.billing: expected a level from 1 to 255",
        ),
        (
            ("queues = { billing = 2, general = 0 }", "queues = { bill = 2 }"),
            r"agents\[0\]\.queues\.bill: unknown queue",
        ),
    ],
)
def test_a_bad_file_names_the_field(tmp_path: Path, patch: tuple[str, str], message: str) -> None:
    old, new = patch
    assert old in GOOD_TOML
    path = write(tmp_path, "bad.toml", GOOD_TOML.replace(old, new, 1))
    with pytest.raises(o.InvalidConfigError, match=message):
        o.load_config(path)


def test_duplicates_and_unreadable_files(tmp_path: Path) -> None:
    dup = GOOD_TOML + '\n[[queues]]\nname = "general"\n'
    with pytest.raises(o.InvalidConfigError, match=r"queues\[2\]\.name: duplicate queue name"):
        o.load_config(write(tmp_path, "dup.toml", dup))
    with pytest.raises(o.InvalidConfigError, match="not valid TOML"):
        o.load_config(write(tmp_path, "broken.toml", "[[queues]\n"))
    with pytest.raises(o.InvalidConfigError, match=r"expected a \.toml, \.yaml or \.yml file"):
        o.load_config(write(tmp_path, "centre.ini", "x"))
