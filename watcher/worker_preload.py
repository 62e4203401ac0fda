"""Imported by the pool's fork server before it forks a worker (see ``workers.py``).

Loading the tagging data and the language model here, once, lets every worker share their
pages, while the main process, which never tags, holds neither.
"""

import gc
import os

from watcher import fork_server, prepare
from watcher.lead_encoder import encoder
from watcher.workers import warm_up_worker

prepare.load_stages()
warm_up_worker()
if prepare.ENCODE_LEADS and os.environ.get(fork_server.ENCODER) == "1":
    encoder()  # the lead encoder's tokenizer and weights, shared by every worker
gc.freeze()
