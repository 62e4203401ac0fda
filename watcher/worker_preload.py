"""Imported by the pool's fork server before it forks a worker (see ``workers.py``).

Loading the tagging data and the language model here, once, lets every worker share their
pages, while the main process, which never tags, holds neither.
"""

import gc

from watcher.workers import warm_up_worker

warm_up_worker()
gc.freeze()
