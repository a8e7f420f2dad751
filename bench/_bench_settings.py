"""Settings for benchmark clusters: ``config.settings`` plus opt-in probes.

Used only by ``bench/throughput.py`` (``DJANGO_SETTINGS_MODULE=bench._bench_settings``);
with no ``BENCH_*`` variable set it is exactly ``config.settings``.

- ``BENCH_Q_RECYCLE=N``: django-q2 recycles a worker process after N tasks
  (its default is 500). The memory measurement sets it high, so that a
  worker that grows cannot hide it by being replaced.
- ``BENCH_Q_SAVE_LIMIT=N``: django-q2's ``save_limit`` (config.settings: 1000). With
  a positive limit django-q2's monitor process, after every task, selects every
  stored successful task FOR UPDATE and deletes the oldest; -1 stores none.
- ``BENCH_PROFILE_DIR=/path``: every worker process of the cluster profiles the
  tasks it runs with cProfile and counts the SQL statements of its process
  (``bench._worker_probe``); it writes ``<pid>.pstats`` and ``<pid>.json`` there.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS, Q_CLUSTER

if os.environ.get("BENCH_Q_RECYCLE"):
    Q_CLUSTER["recycle"] = int(os.environ["BENCH_Q_RECYCLE"])

if os.environ.get("BENCH_Q_SAVE_LIMIT"):
    Q_CLUSTER["save_limit"] = int(os.environ["BENCH_Q_SAVE_LIMIT"])

if os.environ.get("BENCH_PROFILE_DIR"):
    INSTALLED_APPS = [*INSTALLED_APPS, "bench._worker_probe.ProbeConfig"]
