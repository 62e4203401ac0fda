"""Database upkeep: ``init``, ``retag``, ``regroup``."""

from __future__ import annotations

import click
from rich.console import Console

from watcher.cli.context import Context, progress_bar


@click.command()
@click.pass_obj
def init(obj: Context) -> None:
    """Create or migrate the database and load the config's topics and feeds."""
    with obj.store(check=True) as store:
        click.echo(
            f"{store.path}: ready ({store.count('feeds')} feeds, {store.count('items')} items)"
        )


@click.command()
@click.option("--topic", help="Only items in this topic or matching its query now.")
@click.pass_obj
def retag(obj: Context, topic: str | None) -> None:
    """Recompute topics and tags of stored items (after a config change); fetches nothing."""
    from watcher.retag import retag as retag_items

    if topic is not None and topic not in {t.name for t in obj.config.topics}:
        raise click.BadParameter(f"unknown topic {topic!r}", param_hint="--topic")
    console = Console(stderr=True)
    with obj.store(check=True) as store, progress_bar(console) as progress:
        task = progress.add_task("retagging", total=store.count("items"))
        count = retag_items(
            obj.config, store, topic=topic, on_batch=lambda n: progress.advance(task, n)
        )
    click.echo(f"retagged {count} items")


@click.command()
@click.pass_obj
def regroup(obj: Context) -> None:
    """Recompute the stories of every stored item (after a change of story settings);
    near-duplicate groups stay; fetches nothing."""
    from watcher.regroup import regroup as regroup_items

    console = Console(stderr=True)
    with obj.store(check=True) as store, progress_bar(console) as progress:
        task = progress.add_task("regrouping", total=store.count("items"))
        count = regroup_items(obj.config, store, on_batch=lambda n: progress.advance(task, n))
        stories = store.db.execute("SELECT count(DISTINCT story_id) FROM items").fetchone()[0]
    click.echo(f"regrouped {count} items into {stories} stories")
