"""Stopping a local run on SIGINT (Ctrl-C) or SIGTERM within seconds, with nothing retried.

kfp.local has no way to cancel a run: its tasks are child processes started from worker
threads, a failed task is retried with back-off (the retries are meant for transient cluster
failures), and the threads are joined before an exception leaves the run. Left alone, an
interrupted tune task was retried and the run went on for 37 s after Ctrl-C. While a local run
is in `stoppable()`:

- each task's process is remembered (it stays in stablepipe's process group, so `kill -9` of
  the group still ends everything);
- the first SIGINT or SIGTERM sets `stopping`, sends SIGTERM to every task's process tree (a
  task is `sh -c` around its Python process, so the shell alone is not enough; SIGKILL to what
  is left after `GRACE_SECONDS`) and raises `Interrupted` in the main thread;
- from then on no task process is started (an attempt fails at once) and kfp's back-off sleeps
  return at once, so its threads end as soon as the killed tasks' pipes close.

The task hand-off is kfp.local's own `run_local_subprocess` and the back-off its task
executor's `time.sleep`; both are replaced only inside `stoppable()` and put back after.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

GRACE_SECONDS = 3.0
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; `code` is the exit code (128 + the signal number)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = EXIT_CODES.get(signal.Signals(signum), 128 + signum)
        self.stages: list[dict[str, Any]] = []


class Stopper:
    """The task processes of one run, and whether the run is stopping."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self.stopping = stopping or threading.Event()
        self.children: set[subprocess.Popen[str]] = set()
        self.lock = threading.Lock()

    def run_task(self, full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
        """kfp.local's run_local_subprocess, remembered, and refused once stopping."""
        if self.stopping.is_set():
            return 1
        env = {**os.environ, **env_vars} if env_vars else None
        with subprocess.Popen(
            full_command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
        ) as process:
            with self.lock:
                self.children.add(process)
            if self.stopping.is_set():  # stopped between the check above and the start
                self.terminate(process, signal.SIGTERM)
            try:
                if process.stdout:
                    for line in iter(process.stdout.readline, ""):
                        print(line, end="")
                    print("\n")
                code = process.wait()
                # a task that ends once the run is stopping was stopped, whatever its code: kfp
                # would cache a success, and a rerun would reuse a half-done stage
                return (code or 1) if self.stopping.is_set() else code
            finally:
                with self.lock:
                    self.children.discard(process)

    def sleep(self, seconds: float) -> None:
        """kfp's retry back-off: cut short once the run is stopping."""
        self.stopping.wait(seconds)

    @staticmethod
    def terminate(process: subprocess.Popen[str], signum: int) -> list[Any]:
        """Signal the task's process and every process under it; returns them (psutil)."""
        import psutil

        try:
            tree = [psutil.Process(process.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                member.send_signal(signum)
        return tree

    def stop(self, signum: int, _frame: Any = None) -> None:
        """The signal handler: stop every task, then interrupt the main thread."""
        if not self.stopping.is_set():
            self.stopping.set()
            with self.lock:
                running = list(self.children)
            signalled = [m for process in running for m in self.terminate(process, signal.SIGTERM)]
            threading.Thread(target=kill_survivors, args=(signalled,), daemon=True).start()
        raise Interrupted(signum)


def kill_survivors(processes: list[Any]) -> None:
    """SIGKILL what SIGTERM left running after GRACE_SECONDS. Never waits on them: a wait
    would reap the tasks' processes before kfp.local's own wait, which then reads exit code 0
    (a stopped tune task was reported, and cached, as a success)."""
    time.sleep(GRACE_SECONDS)
    for process in processes:  # psutil refuses a pid that now names another process
        with contextlib.suppress(Exception):
            if process.is_running():
                process.kill()


class Clock:
    """The `time` module as kfp's task executor sees it, with the stopper's sleep."""

    def __init__(self, stopper: Stopper) -> None:
        self.sleep = stopper.sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def stoppable(stopping: threading.Event | None = None) -> Iterator[Stopper]:
    """Run kfp.local tasks so that SIGINT and SIGTERM stop the run (see the module's doc);
    `stopping` is set when they do. Outside the main thread (where signal handlers cannot be
    set) nothing is installed but the task hand-off."""
    from kfp.local import subprocess_task_handler
    from kfp.local.orchestrator import task_executor

    stopper = Stopper(stopping)
    saved_run = subprocess_task_handler.run_local_subprocess
    saved_time = task_executor.time
    handlers: dict[signal.Signals, Any] = {}
    subprocess_task_handler.run_local_subprocess = stopper.run_task
    task_executor.time = Clock(stopper)
    try:
        if threading.current_thread() is threading.main_thread():
            for signum in EXIT_CODES:
                handlers[signum] = signal.signal(signum, stopper.stop)
        yield stopper
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        subprocess_task_handler.run_local_subprocess = saved_run
        task_executor.time = saved_time
