"""``watcher run``: the long-running service that polls feeds and runs cron jobs."""

from watcher.daemon.cron import CronJob, CronJobSource, no_cron_jobs
from watcher.daemon.jobs import configured_jobs
from watcher.daemon.lock import DaemonLock
from watcher.daemon.service import Daemon, run_daemon

__all__ = [
    "CronJob",
    "CronJobSource",
    "Daemon",
    "DaemonLock",
    "configured_jobs",
    "no_cron_jobs",
    "run_daemon",
]
