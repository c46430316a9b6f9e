"""The [broadcasts] table of config.toml: defaults, and one clear line per mistake."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.config import BroadcastsSection, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_config_has_the_defaults() -> None:
    section = load_settings(ROOT / "config.toml").broadcasts
    assert section == BroadcastsSection()
    assert section.quiet == (time(21, 0), time(7, 0))
    assert section.rate_per_second == 25 and not section.paid
    assert BroadcastsSection(quiet_hours="").quiet is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('quiet_hours = "21h-7h"', 'broadcasts.quiet_hours: "21h-7h" is not a range'),
        ('quiet_hours = "07:00-07:00"', "is not a range of two different times"),
        ("rate_per_second = 5000", "broadcasts.rate_per_second: 5000 is above the maximum"),
        ('schedule = "0 8 1 *"', 'broadcasts.schedule: "0 8 1 *" is not a cron expression'),
        ('schedule = "0 25 1 * *"', "is not a valid cron expression"),
    ],
)
def test_a_wrong_value_is_named_with_its_fix(tmp_path: Path, line: str, message: str) -> None:
    example = (ROOT / "config.toml").read_text(encoding="utf-8")
    key = line.split(" = ")[0]
    lines = [row for row in example.splitlines() if not row.startswith(f"{key} = ")]
    config = tmp_path / "config.toml"
    text = "\n".join(lines).replace("[broadcasts]", f"[broadcasts]\n{line}")
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    [problem] = error.value.lines
    assert message in problem
