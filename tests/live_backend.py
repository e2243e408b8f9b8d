"""The app's backend as production serves it, in its own process group: what `reflex run --env prod`
runs for the backend (granian serving app.app:app, the app imported and its heap frozen in the
supervisor before the workers fork). No frontend build is needed: the metering API, health and
webhooks are all there. Used by the multi-process and fault tests and by bench/metering.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.cli import _child_env, metrics_env
from app.config import PROJECT_ROOT

SERVE = (
    "import os, sys\n"
    "from reflex import constants\n"
    "from reflex.utils import prerequisites\n"
    "from reflex.utils.exec import run_granian_backend_prod\n"
    # As `reflex run --env prod` does: several workers start from one compile made first, whose
    # record of the stateful pages they read; each compiling on its own into the one web
    # directory races the others' rmtree.
    "if int(os.environ['GRANIAN_WORKERS']) > 1:\n"
    "    prerequisites.get_compiled_app(use_rich=False)\n"
    "run_granian_backend_prod('127.0.0.1', int(sys.argv[1]), constants.LogLevel.WARNING)\n"
)


def redis_reason() -> str | None:
    """Why the local Redis cannot be used (None when it answers PING)."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return None
    except OSError as exc:
        return f"Redis not reachable at 127.0.0.1:6379: {exc}"
    return "Redis did not answer PING"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_health(url: str, process: subprocess.Popen, timeout: float, interval: float) -> bool:
    """Whether the server at `url` answers /api/health within `timeout` s; False as soon as its
    process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    return False


class LiveBackend:
    def __init__(self, data_dir: Path, database_url: str, *, workers: int = 1, env: dict[str, str] | None = None):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"backend-{self.port}.log"
        self.env = {
            **_child_env(),
            "DATABASE_URL": database_url,
            "LEDGERDESK_DATA_DIR": str(data_dir),
            "REFLEX_WEB_WORKDIR": str(data_dir / "web"),
            "REFLEX_ENV_MODE": "prod",
            # As `reflex run --env prod` does for its backend: the workers do not compile pages
            # but read what the compile before them (SERVE) recorded.
            "REFLEX_SKIP_COMPILE": "true",
            "APP_PORT": str(self.port),
            "GRANIAN_WORKERS": str(workers),
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> LiveBackend:
        self.launch()
        return self.wait_until_up()

    def launch(self) -> None:
        # As `app.cli serve` starts it: every worker's metrics in one directory, emptied at start.
        self.env.update(metrics_env(self.data_dir))
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE, str(self.port)],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_up(self, timeout: float = 120) -> LiveBackend:
        if answers_health(self.url, self.process, timeout, interval=0.2):
            return self
        self.stop()
        raise RuntimeError(f"The backend did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9 of the whole process group: supervisor and workers, no clean-up of any kind."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LiveBackend:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
