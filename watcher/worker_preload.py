"""Imported by the pool's fork server before it forks a worker (see ``workers.py``).

Loading the tagging data and the language model here, once, lets every worker share their
pages, while the main process, which never tags, holds neither.
"""

import gc

from watcher.normalize import warm_up_language
from watcher.tagging.tag import warm_up

warm_up()
warm_up_language()
gc.freeze()
