#!/usr/bin/env python3
"""Run one ``dlkit train`` as N workers on this machine (tf.distribute MultiWorkerMirroredStrategy).

    python scripts/launch_local_cluster.py N CONFIG [CONFIG ...] [-- EXTRA DLKIT TRAIN ARGS]
    python scripts/launch_local_cluster.py 2 configs/x.yaml -- --set training.epochs=3
    python scripts/launch_local_cluster.py 2 -- --resume runs/x/001      # relaunch after a stop

The config must say ``training.distribution.strategy: multi_worker_mirrored``. The launcher picks N free
ports on 127.0.0.1, starts N ``dlkit train`` processes with the matching ``TF_CONFIG`` (worker 0 is the chief
and writes the run folder), prints their output prefixed ``[worker i]``, and stops all of them (SIGTERM, then
SIGKILL after ``--grace`` seconds) as soon as one fails or on Ctrl-C/SIGTERM. Exit code: the first failing
worker's code (0 when all finish); 130 after Ctrl-C, 143 after SIGTERM. On real machines run the same
``dlkit train`` once per host with that host's ``TF_CONFIG`` (see the README's Scale-out section).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

POLL_S = 0.1


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """N distinct free TCP ports on ``host`` (all bound at once so they differ, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_configs(n: int, host: str = "127.0.0.1") -> list[str]:
    """The ``TF_CONFIG`` of each of N workers on ``host``."""
    cluster = {"worker": [f"{host}:{port}" for port in free_ports(n, host)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(n)]


def default_dlkit() -> list[str]:
    """The ``dlkit`` beside this Python (a virtualenv's), else ``python -m dlkit``."""
    beside = Path(sys.executable).with_name("dlkit")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("dlkit")
    return [found] if found else [sys.executable, "-m", "dlkit"]


class Cluster:
    """N worker processes, their output streamed with a prefix, stopped together."""

    def __init__(self, commands: list[list[str]], envs: list[dict[str, str]], out: IO[str], grace: float) -> None:
        self.out, self.grace = out, grace
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.threads: list[threading.Thread] = []
        for i, (command, env) in enumerate(zip(commands, envs, strict=True)):
            # Own session: a Ctrl-C in the terminal reaches only the launcher, which then stops every worker
            # with SIGTERM (dlkit saves its state on SIGTERM and exits 143).
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
            self.procs.append(proc)
            thread = threading.Thread(target=self._pump, args=(i, proc), daemon=True)
            thread.start()
            self.threads.append(thread)

    def say(self, line: str) -> None:
        with self.lock:
            self.out.write(line if line.endswith("\n") else line + "\n")
            self.out.flush()

    def _pump(self, i: int, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self.say(f"[worker {i}] " + raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    def first_failure(self) -> tuple[int, int] | None:
        """(worker index, exit code) of a worker that exited non-zero, or None."""
        for i, proc in enumerate(self.procs):
            code = proc.poll()
            if code:
                return i, code if code > 0 else 128 - code
        return None

    def all_done(self) -> bool:
        return all(proc.poll() is not None for proc in self.procs)

    def stop(self) -> None:
        """SIGTERM every running worker; SIGKILL those still running after the grace period."""
        running = [p for p in self.procs if p.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and any(p.poll() is None for p in running):
            time.sleep(POLL_S)
        for i, proc in enumerate(self.procs):
            if proc.poll() is None:
                self.say(f"[launcher] worker {i} still running {self.grace:g}s after SIGTERM: killing it")
                proc.kill()
        for proc in self.procs:
            proc.wait()
        self.join()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=5)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="launch_local_cluster.py",
        description="Run `dlkit train` as N multi_worker_mirrored workers on 127.0.0.1.",
        epilog="Everything after N is passed to `dlkit train` (a `--` separator is dropped).",
    )
    parser.add_argument("--grace", type=float, default=30.0, help="Seconds between SIGTERM and SIGKILL. Default 30.")
    parser.add_argument("--host", default="127.0.0.1", help="Address the workers listen on. Default 127.0.0.1.")
    parser.add_argument(
        "--dlkit", default=None, help="Command that runs dlkit (shell-quoted). Default: the dlkit beside this Python."
    )
    parser.add_argument("n", type=int, metavar="N", help="Number of workers (worker 0 is the chief).")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, metavar="CONFIG ... [-- ARGS]")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"N must be at least 1 (got {args.n})")
    args.train_args = [a for a in args.train_args if a != "--"]
    if not args.train_args:
        parser.error("give a CONFIG (or `-- --resume RUN_DIR`)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    dlkit = shlex.split(args.dlkit) if args.dlkit else default_dlkit()
    command = [*dlkit, "train", *args.train_args]
    configs = tf_configs(args.n, args.host)
    envs = []
    for tf_config in configs:
        env = dict(os.environ, TF_CONFIG=tf_config, PYTHONUNBUFFERED="1")
        envs.append(env)
    print(f"[launcher] {args.n} workers: {shlex.join(command)}", flush=True)
    for i, tf_config in enumerate(configs):
        print(f"[launcher] worker {i}: TF_CONFIG='{tf_config}'", flush=True)

    stop_signal: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stop_signal.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    cluster = Cluster([command] * args.n, envs, sys.stdout, args.grace)
    try:
        while True:
            failure = cluster.first_failure()
            if failure is not None:
                i, code = failure
                cluster.say(f"[launcher] worker {i} exited with {code}: stopping the others")
                cluster.stop()
                return code
            if stop_signal:
                name = signal.Signals(stop_signal[0]).name
                cluster.say(f"[launcher] {name}: stopping every worker (SIGTERM saves their state)")
                cluster.stop()
                return 128 + stop_signal[0]
            if cluster.all_done():
                cluster.join()
                cluster.say(f"[launcher] all {args.n} workers finished")
                return 0
            time.sleep(POLL_S)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
