"""The docs keep up with the code: every command and every setting is documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from watcher.cli import main
from watcher.config import (
    AlertsConfig,
    DaemonConfig,
    DedupeConfig,
    DigestConfig,
    EmailAlertConfig,
    FeedConfig,
    FullTextConfig,
    MetricsConfig,
    PollConfig,
    ServeConfig,
    SmtpConfig,
    TopicConfig,
    WebhookConfig,
)

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
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
    + [("digests", key) for key in DigestConfig.model_fields]
    + [("smtp", key) for key in SmtpConfig.model_fields]
    + [("serve", key) for key in ServeConfig.model_fields]
    + [("alerts", key) for key in AlertsConfig.model_fields]
    + [("alerts.webhooks", key) for key in WebhookConfig.model_fields]
    + [("alerts.emails", key) for key in EmailAlertConfig.model_fields]
    + [("metrics", key) for key in MetricsConfig.model_fields]
    + [("full_text", key) for key in FullTextConfig.model_fields]
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


def test_commented_digest_example_in_the_shipped_config_is_valid() -> None:
    """Uncommenting the example [[digests]] and [smtp] of the default config gives a valid config."""
    import re

    from watcher.config import config_from_dict

    text = (ROOT / "config" / "watcher.toml").read_text(encoding="utf-8")
    block = text.split(
        "# ---------------------------------------------------------------- digests"
    )[1]
    block = block.split("# ----------------------------------------------------------------")[0]
    example = "\n".join(
        line[2:] for line in block.splitlines() if re.match(r"# (\[|[a-z_]+ = )", line)
    )
    import tomllib

    data = tomllib.loads(text)
    data.update(tomllib.loads(example))
    config = config_from_dict(data, "watcher.toml")
    assert config.digest("morning").to == ("analyst@example.org",)
    assert config.smtp is not None
    assert config.smtp.password_env == "WATCHER_SMTP_PASSWORD"
