"""Digest emails: stored items grouped by topic and story, as HTML and text, over SMTP.

The daemon calls :func:`send_digest` from each digest's cron job; ``watcher digest``
uses :func:`preview_digest` for ``--dry-run``.
"""

from watcher.digest.build import Digest, SourceRef, StoryEntry, TopicSection, build_digest
from watcher.digest.run import DigestOutcome, DigestPreview, preview_digest, send_digest

__all__ = [
    "Digest",
    "DigestOutcome",
    "DigestPreview",
    "SourceRef",
    "StoryEntry",
    "TopicSection",
    "build_digest",
    "preview_digest",
    "send_digest",
]
