"""The CLI from any folder: where it finds the config and the database, and what it says
when it finds none (DESIGN.md, "Contract"). Real processes, a real HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import kant_story, rss, write_config
from watcher.paths import locate, user_config_path, user_db_path

ROOT = Path(__file__).resolve().parents[1]


def run(cwd: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("WATCHER_", "XDG_"))
    }
    environment.update(HOME=str(home), **env)
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_locate_follows_the_contract(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": "", "XDG_DATA_HOME": ""}
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    found = locate(None, None, cwd=empty, env=env)
    assert found.config == user_config_path(env)
    assert found.db == user_db_path(env)
    assert str(found.db).endswith(".local/share/watcher/watcher.db")
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "config" / "watcher.toml").write_text("", encoding="utf-8")
    found = locate(None, None, cwd=project, env=env)
    assert (found.config, found.db) == (
        project / "config" / "watcher.toml",
        project / "db" / "watcher.db",
    )
    xdg = {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert user_config_path(xdg) == tmp_path / "xdg" / "watcher" / "watcher.toml"
    given = locate(Path("a.toml"), Path("b.db"), cwd=project, env=env)
    assert (given.config, given.db, given.config_given, given.db_given) == (
        Path("a.toml"),
        Path("b.db"),
        True,
        True,
    )


def test_no_config_anywhere_says_where_it_looked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = run(tmp_path, home, "status")
    assert result.returncode == 1
    assert "config/watcher.toml" in result.stderr
    assert str(home / ".config" / "watcher" / "watcher.toml") in result.stderr
    assert "--config" in result.stderr
    assert "WATCHER_CONFIG" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_mistyped_db_folder_is_an_error_except_for_init(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "no-such-folder" / "watcher.db"
    result = run(tmp_path, tmp_path, "--config", str(config), "--db", str(db), "status")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert not db.parent.exists()
    result = run(tmp_path, tmp_path, "--config", str(config), "--db", str(db), "init")
    assert result.returncode == 0, result.stderr
    assert db.exists()


def test_the_user_config_and_data_directory_serve_any_folder(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """With the config in ~/.config/watcher, every everyday command works from a folder
    that is neither the repository nor the home, and the database goes to
    ~/.local/share/watcher."""
    httpserver.expect_request("/f.xml").respond_with_data(
        rss([kant_story(1), kant_story(2)]), content_type="application/rss+xml"
    )
    home = tmp_path / "home"
    config_dir = home / ".config" / "watcher"
    config_dir.mkdir(parents=True)
    write_config(config_dir, [httpserver.url_for("/f.xml")])
    somewhere = tmp_path / "somewhere"
    somewhere.mkdir()
    for command in (
        ["init"],
        ["poll", "--all"],
        ["status"],
        ["feeds", "list"],
        ["search", "Kant"],
        ["stories"],
        ["digest", "--dry-run"],
        ["regroup"],
    ):
        result = run(somewhere, home, *command)
        assert result.returncode == 0, (command, result.stderr)
    assert (home / ".local" / "share" / "watcher" / "watcher.db").is_file()
    assert "Kant air base report number 1" in run(somewhere, home, "search", "Kant").stdout
    assert list(somewhere.iterdir()) == []


def test_readme_commands_run_from_outside_the_repository(tmp_path: Path) -> None:
    """The repository's own config, named with --config, from another folder: the
    commands of the README's everyday list that need no network."""
    home = tmp_path / "home"
    home.mkdir()
    config = ROOT / "config" / "watcher.toml"
    db = tmp_path / "data" / "watcher.db"
    outside = tmp_path / "outside"
    outside.mkdir()
    base = ["--config", str(config), "--db", str(db)]
    articles = outside / "saved"
    articles.mkdir()
    (articles / "note.txt").write_text(
        "Kant air base drills\n\nThe Kant air base in Kyrgyzstan held drills, officials "
        "in Bishkek said on Monday.\n",
        encoding="utf-8",
    )
    for command in (
        ["init"],
        ["corpus", "import", str(articles)],
        ["status"],
        ["status", "--json"],
        ["stories", "--topic", "kant-air-base"],
        ["search", '"air base" AND Kant'],
        ["retag"],
        ["feeds", "list"],
        ["feeds", "export", "--out", str(outside / "feeds.opml")],
        ["digest", "--dry-run", "--out", str(outside / "digest.eml")],
        ["alerts", "status"],
    ):
        result = run(outside, home, *base, *command)
        assert result.returncode == 0, (command, result.stderr)
    assert (outside / "feeds.opml").is_file()
    assert (outside / "digest.eml").is_file()


@pytest.mark.skipif(shutil.which("watcher") is None, reason="the console script is not installed")
def test_the_console_script_finds_the_project_config_in_its_folder(tmp_path: Path) -> None:
    """`watcher` run in a folder with config/ uses config/watcher.toml and db/watcher.db."""
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config")
    result = subprocess.run(
        ["watcher", "init"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db" / "watcher.db").is_file()


def test_reading_commands_need_no_config_for_a_named_database(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """From a folder with no config anywhere, the commands that only read answer for a
    database named with --db (or $WATCHER_DB), as the last command mirrored it; those that
    need the config (status, digest) and every command without a named database still
    say where they looked for one."""
    httpserver.expect_request("/f.xml").respond_with_data(
        rss([kant_story(1), kant_story(2)]), content_type="application/rss+xml"
    )
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "project").mkdir()
    config = write_config(tmp_path / "project", [httpserver.url_for("/f.xml")])
    db = tmp_path / "data" / "watcher.db"
    db.parent.mkdir()
    polled = run(tmp_path, home, "--config", str(config), "--db", str(db), "poll", "--all")
    assert polled.returncode == 0, polled.stderr
    before = db.read_bytes()
    somewhere = tmp_path / "somewhere"
    somewhere.mkdir()

    for command in (["stories"], ["search", "Kant"], ["feeds", "list"]):
        result = run(somewhere, home, "--db", str(db), *command)
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
    found = run(somewhere, home, "search", "Kant", WATCHER_DB=str(db))
    assert "Kant air base report number 1" in found.stdout
    for command in (["status"], ["digest", "--dry-run"]):
        result = run(somewhere, home, "--db", str(db), *command)
        assert result.returncode == 1, command
        assert "no configuration found" in result.stderr
    unnamed = run(somewhere, home, "stories")
    assert unnamed.returncode == 1
    assert "no configuration found" in unnamed.stderr
    mistyped = run(somewhere, home, "--db", str(db.parent / "watcher.bd"), "stories")
    assert mistyped.returncode == 1
    assert "no configuration found" in mistyped.stderr
    assert not (db.parent / "watcher.bd").exists()  # not created without a config
    assert db.read_bytes() == before  # read as it is: nothing mirrored
    assert list(somewhere.iterdir()) == []
