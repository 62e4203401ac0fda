"""Imported by the pool's fork server before it forks a worker (see ``workers.py``).

Loading the tagging data and the language model here, once, lets every worker share their
pages, while the main process, which never tags, holds neither.
"""

import gc

from watcher import prepare
from watcher.story_vectors import encoder
from watcher.workers import warm_up_worker

warm_up_worker()
if prepare.ENCODE_LEADS:  # the lead encoder's weights (~160 MB), shared by every worker
    encoder()
gc.freeze()
