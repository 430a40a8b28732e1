"""The docs name every setting, and the public API stays what the docs promise."""

from __future__ import annotations

from pathlib import Path

import steadybot
from steadybot.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`STEADYBOT_{name.upper()}`" not in text]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_public_names_resolve() -> None:
    for name in steadybot.__all__:
        assert getattr(steadybot, name) is not None, name
