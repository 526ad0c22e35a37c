"""gunicorn settings for the console's web processes (`gunicorn crm_console.wsgi` reads this file).

Each worker loads every live campaign's policies and SHAP explainers, and the URLconf (which
imports every view module), before it takes a request, so no CRM call pays seconds for them (a
worker's first request used to wait ~0.5 s for the URLconf alone, and the requests queued on its
kept-alive connections with it), then moves everything loaded so far out of the garbage
collector's way (`gc.freeze`: torch, Django and the agents are tens of thousands of long-lived
objects a full collection would walk again mid-request). One math thread per process, because
several processes share the cores (numpy's and torch's thread pools fight each other otherwise).
"""

import gc
import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, so a process's concurrent single decisions are decided in one batch
# (crm_console.decisioning.batching), and kept-alive connections cost a CRM no reconnect. Idle
# connections wait in the worker's poller, not in a thread; kept longer than a load balancer's
# idle timeout (60 s on the common ones), so the balancer, not us, closes a quiet connection.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
keepalive = 75
timeout = 60


def post_worker_init(worker) -> None:
    from django.urls import get_resolver

    from crm_console.decisioning.serving import serving_warm_up

    get_resolver().reverse_dict  # imports the URLconf and every view, compiles the patterns

    try:
        warmed = serving_warm_up()
    except Exception:  # a database not migrated yet must not stop the web process
        worker.log.exception("serving warm-up failed")
        warmed = None
    gc.collect()
    gc.freeze()
    if warmed is not None:
        worker.log.info("serving warmed up for campaigns %s", warmed)
