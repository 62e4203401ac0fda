"""watcher: a media-monitoring feed watcher."""

import os

# One BLAS thread per process, before numpy is first imported: the work is spread over
# processes (the pool's workers, one per core) already, and OpenBLAS's own threads spin
# between calls, which took the other core from the workers and doubled the writer's CPU
# on a bilingual cold pass (docs/benchmarks.md). A value set outside wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
