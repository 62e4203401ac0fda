"""The docs keep up with the code: every command and every setting is documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from watcher.cli import main
from watcher.config import DaemonConfig, DedupeConfig, FeedConfig, PollConfig, TopicConfig

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            names.extend(_commands(command, f"{full} "))
        else:
            names.append(full)
    return names


def _all_docs() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    )


@pytest.mark.parametrize("command", _commands(main))
def test_every_command_is_documented(command: str) -> None:
    """Each CLI command appears as `watcher <command>` in the README or docs."""
    assert f"watcher {command}" in _all_docs()


@pytest.mark.parametrize(
    ("section", "key"),
    [("poll", key) for key in PollConfig.model_fields]
    + [("feeds", key) for key in FeedConfig.model_fields]
    + [("topics", key) for key in TopicConfig.model_fields]
    + [("dedupe", key) for key in DedupeConfig.model_fields]
    + [("daemon", key) for key in DaemonConfig.model_fields],
)
def test_every_setting_is_documented(section: str, key: str) -> None:
    """Each config key has a row in docs/configuration.md."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"| `{key}` |" in text, f"[{section}].{key} is not in docs/configuration.md"


def test_shipped_config_uses_only_documented_keys() -> None:
    """The default config loads, so every key in it is one the docs describe."""
    from watcher.config import load_config

    config = load_config(ROOT / "config" / "watcher.toml")
    assert config.topic("kant-air-base").keywords
