"""The console started exactly as `make run` starts it (`python -m app.cli serve`), on free ports
with a data directory of its own, and a kept child process that runs tests/e2e/setup_helpers.py's
functions against its database. The e2e tests' `live_app` and bench/live_updates.py both use it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

from app.config import PROJECT_ROOT
from tests.live_backend import answers_health, free_port


class ConsoleDidNotStart(RuntimeError):
    """The console ended, or did not answer its health check in time; the message ends with its log."""


class SetupWorker:
    """The child process that runs tests/e2e/setup_helpers.py's functions (`--serve`), started at
    the first call and kept: one import of the app for the whole run."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process: subprocess.Popen[str] | None = None

    def call(self, function: str, arguments: dict[str, Any], timeout: float = 60) -> Any:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.setup_helpers", "--serve"],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"function": function, "arguments": arguments}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise AssertionError(f"{function} did not answer in {timeout} s")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the setup process ended during {function}")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(answer["error"])
        return answer["result"]

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class Console:
    """A running console: its address, data directory (its output in app.log), environment and
    process (the leader of its own process group)."""

    def __init__(self, url: str, data_dir: Path, env: dict[str, str], process: subprocess.Popen, log: TextIO):
        self.url = url
        self.data_dir = data_dir
        self.env = env
        self.process = process
        self._log = log
        self._setup = SetupWorker(env)

    @classmethod
    def start(cls, data_dir: Path, env: dict[str, str], *, timeout: float) -> Console:
        """Start the console in `data_dir` with the test environment plus `env` and wait for its
        health check; ConsoleDidNotStart (with the end of its log) when it does not answer."""
        app_port = free_port()
        env = {
            # The console's own Stripe (localstripe), mail (the log) and SQLite database in data_dir.
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("STRIPE_", "SMTP_", "DATABASE_URL", "REDIS_URL"))
            },
            "APP_PORT": str(app_port),
            "LOCALSTRIPE_PORT": str(free_port()),
            "PUBLIC_URL": f"http://localhost:{app_port}",
            "LEDGERDESK_DATA_DIR": str(data_dir),
            "APP_HOST": "127.0.0.1",
            **env,
        }
        log = (data_dir / "app.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        console = cls(f"http://localhost:{app_port}", data_dir, env, process, log)
        if answers_health(f"http://127.0.0.1:{app_port}", process, timeout, interval=0.5):
            return console
        console.stop()
        raise ConsoleDidNotStart(f"The console did not start:\n{(data_dir / 'app.log').read_text()[-4000:]}")

    def setup(self, function: str, **arguments: Any) -> Any:
        """Call a function of tests/e2e/setup_helpers.py against the console's own database (make
        an account, read the outbox); its result."""
        return self._setup.call(function, arguments)

    def stop(self) -> None:
        self._setup.close()
        try:
            # The whole group: `serve` and what it started (localstripe, the app's workers).
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
