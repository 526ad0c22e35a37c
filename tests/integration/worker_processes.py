"""Real Celery worker subprocesses for the integration tests (`celery -A
tests.integration.training_worker_app worker`), on their own Redis database so workers of other
test sessions on the same Redis never take these messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def isolated_redis_url() -> str:
    """REDIS_URL's database number + 7 (mod 16); TEST_WORKER_REDIS_URL where a runner owns
    exactly one Redis database."""
    if os.environ.get("TEST_WORKER_REDIS_URL"):
        return os.environ["TEST_WORKER_REDIS_URL"]
    base = os.environ["REDIS_URL"].rstrip("/")
    head, _, number = base.rpartition("/")
    if not number.isdigit():
        head, number = base, "0"
    return f"{head}/{(int(number) + 7) % 16}"


def database_url() -> str:
    db = settings.DATABASES["default"]
    return (f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


class WorkerProcess:
    """`celery -A tests.integration.training_worker_app worker` in its own process group."""

    def __init__(self, log_path: Path, checkpoint_dir: Path, *, name: str = "worker",
                 env: dict[str, str] | None = None):
        env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": isolated_redis_url(),
               "POLICY_CHECKPOINT_DIR": str(checkpoint_dir), "CELERY_TASK_ALWAYS_EAGER": "false",
               "PYTHONPATH": str(ROOT), **(env or {})}
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.integration.training_worker_app",
             "worker", "-Q", "training,decisions,default", "--pool", "solo", "--concurrency", "1",
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "info"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for_log("ready.", timeout=90)

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"worker never logged {text!r}:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, no chance to clean up: what an OOM killer or a lost machine does."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def wait_until(predicate, timeout: float, what: str, *, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
