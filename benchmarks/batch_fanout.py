"""Batch fan-out: decisions per second of one batch run with 1 and 2 Celery worker processes on
PostgreSQL, the 1 -> 2 scaling, and each worker's peak RSS.

Each run is started as `run_campaign --no-wait` would (`decisioning.batch_runs.batch_run_start`),
its chunk tasks queued on the `decisions` queue in Redis, and decided by real
`celery -A crm_console worker -Q decisions --pool solo` processes started here (one process per
worker, as on N machines). The clock runs from the start to the run's `finished` status. The
workspace (the demo campaign, --customers benchmark customers, an actor_critic policy live) is
benchmarks/batch_scoring.py's, reused between calls.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_console_batch_fanout \\
    REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python benchmarks/batch_fanout.py --customers 30000 --workers 1 2

Prints markdown rows for BENCHMARKS.md. The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-steps", type=int, default=20_000)
    args = parser.parse_args()

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-" + "x" * 40)
    os.environ.setdefault("DJANGO_SUPPRESSION_HASH_KEY", "benchmark-only-suppression-key")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database of its own, and REDIS_URL")
    import batch_scoring

    batch_scoring._ensure_postgres_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    campaign = batch_scoring._workspace(args.customers, args.train_steps, False)

    from crm_console.celery import app
    from crm_console.decisioning.batch_runs import batch_run_start
    from crm_console.decisioning.models import BatchRun
    from crm_console.decisioning.selectors import batch_run_progress

    app.conf.task_always_eager = False
    out = Path("/tmp") / f"batch-fanout-{os.getpid()}.jsonl"
    rows = []
    for n_workers in args.workers:
        workers = [_worker(i) for i in range(n_workers)]
        try:
            run, _ = batch_run_start(campaign=campaign, chunk_size=args.chunk,
                                     segment={"traits": {"plan": "benchmark"}},
                                     adapter_spec={"kind": "file", "path": str(out)})
            started = time.perf_counter()
            peaks, early = [0] * n_workers, [0] * n_workers
            while True:
                first_tenth = batch_run_progress(run=run)["share"] < 0.1
                for i, worker in enumerate(workers):
                    peaks[i] = max(peaks[i], _rss_tree(worker.pid))
                    if first_tenth:
                        early[i] = peaks[i]
                run.refresh_from_db()
                if run.is_finished:
                    break
                time.sleep(0.5)
            seconds = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=60)
        out.unlink(missing_ok=True)
        assert run.status == BatchRun.Status.FINISHED, run.errors
        rows.append((n_workers, run.totals["decisions"], seconds, peaks, early))

    machine = f"{platform.machine()}, {os.cpu_count()} cores (shared, noisy), PostgreSQL + Redis"
    print("| workers | customers | chunks of | wall s | decisions/s | scaling vs 1 | peak RSS per "
          "worker (MiB), first 10 % of chunks -> whole run | machine |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    for n_workers, decisions, seconds, peaks, early in rows:
        rate = decisions / seconds
        base = base or (rate if n_workers == 1 else None)
        scaling = f"{rate / base:.2f}x" if base else "-"
        print(f"| {n_workers} | {decisions:,} | {args.chunk:,} | {seconds:.1f} | {rate:,.0f} | "
              f"{scaling} | {', '.join(f'{e / 2**20:.0f} -> {p / 2**20:.0f}' for e, p in zip(early, peaks))}"
              f" | {machine} |")


def _worker(index: int) -> subprocess.Popen:
    """One worker process (solo pool: the process that decides is the one measured)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm_console", "worker", "-Q", "decisions",
         "--pool", "solo", "-n", f"fanout{index}@%h", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "warning"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(12)  # Django, torch and the agents imported before the run starts
    return process


def _rss_tree(pid: int) -> int:
    import psutil

    try:
        process = psutil.Process(pid)
        return max([process.memory_info().rss]
                   + [c.memory_info().rss for c in process.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


if __name__ == "__main__":
    main()
