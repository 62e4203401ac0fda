"""``digest``: send the configured digests, or preview one."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from watcher.cli.context import Context
from watcher.display import terminal_safe


@click.command()
@click.option("--name", help="The configured digest to send or preview (default: every one).")
@click.option(
    "--topic", "topics", multiple=True, help="Only this topic (repeatable; default every topic)."
)
@click.option("--dry-run", is_flag=True, help="Build without sending; marks nothing as sent.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the mail to this .eml file instead of sending it (implies --dry-run).",
)
@click.pass_obj
def digest(
    obj: Context, name: str | None, topics: tuple[str, ...], dry_run: bool, out: Path | None
) -> None:
    """Send the configured digests now, or preview one (--dry-run prints its text part).

    With no digest configured, --dry-run builds one digest of every topic from everything
    stored.
    """
    from watcher.digest import preview_digest, send_digest

    config = obj.config
    only = list(topics) or None
    names = [name] if name else [d.name for d in config.digests]
    if only and not name:
        # without --name, --topic picks the digests that cover one of those topics
        names = [
            d.name
            for d in config.digests
            if d.topics is None or any(topic in d.topics for topic in only)
        ] or names
    now = datetime.now(UTC)
    if dry_run or out is not None:
        if out is not None and len(names) > 1:
            raise click.ClickException(
                f"{len(names)} digests are configured ({', '.join(names)}); "
                "choose the one to write with --name"
            )
        chosen: list[str | None] = [*names] if names else [None]
        with obj.reading() as store:
            previews = [
                preview_digest(config, store, each, now=now, topics=only) for each in chosen
            ]
        for preview in previews:
            if out is not None:
                try:
                    out.write_bytes(preview.message.as_bytes())
                except OSError as error:
                    raise click.ClickException(
                        f"cannot write {out}: {error.strerror or error}"
                    ) from None
                click.echo(
                    f"wrote {out}: {terminal_safe(preview.subject)} "
                    f"(not sent; {preview.digest.item_count} items)"
                )
            else:
                click.echo(terminal_safe(preview.text))
        return
    if not names:
        raise click.ClickException(
            f"no digest is configured in {obj.config_path} (see docs/digest.md); "
            "'watcher digest --dry-run' previews one of everything stored"
        )
    failed = 0
    with obj.store() as store:
        for each in names:
            outcome = send_digest(config, store, each, now=now, topics=only)
            click.echo(terminal_safe(outcome.line()), err=outcome.status == "failed")
            failed += outcome.status == "failed"
    if failed:
        sys.exit(1)
