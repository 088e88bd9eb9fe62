"""Warm SDK workers for the local runner: forked from a process that has already imported what they need.

A cold SDK worker spends its first seconds importing Beam, torch, transformers and the model code (about
5 s of CPU per worker on this machine's cores, and the job's workers do it at the same time), before it
hashes or decodes anything. For a nightly increment of a few dozen clips that start-up is most of the job.

`WorkerForkServer` spawns one fresh server process (never a fork of the driver: a driver that has run
gRPC, LanceDB or BLAS threads cannot be forked safely), which imports the workers' modules once and
then serves a Unix socket. The `favor index` command starts it first thing, so it warms up while the
driver itself imports; later jobs of the same process reuse it (`shared_fork_server`). The runner's
worker command is `worker_fork_client.py SOCKET`: for each worker the runner starts, the client sends
its environment and standard streams, the server forks a worker with them
(`pipelines.index.sdk_worker.main`, the same entry point as a cold worker) and reports its exit
status back. The model itself is still loaded once per worker, by the ModelHandler, as before.

Clean-up: a worker dies with its server (PR_SET_PDEATHSIG), the server with the driver; a client that
goes away (the runner kills it when a job fails) takes its worker with it; `close()` stops the server
and any worker still running. Workers are forked from the server, whose only thread is its main one.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.index.worker_fork_client import STATUS

CLIENT_SCRIPT = Path(__file__).with_name("worker_fork_client.py")
_LENGTH = struct.Struct("!I")
_PR_SET_PDEATHSIG = 1


def fork_supported() -> bool:
    """Warm workers need fork, Unix sockets that pass descriptors, and Linux's PR_SET_PDEATHSIG."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "send_fds")


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent exits (no orphaned servers or workers)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _flags, _address = socket.recv_fds(connection, _LENGTH.size, 3)
    if len(header) != _LENGTH.size or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ConnectionError("malformed worker request")
    (length,) = _LENGTH.unpack(header)
    body = b""
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            raise ConnectionError("worker request cut short")
        body += chunk
    return json.loads(body), fds


def run_sdk_worker() -> None:
    from pipelines.index import sdk_worker

    sdk_worker.main()  # leaves with os._exit(0) when the harness is done


def _run_worker(request: dict, fds: list[int], target: Callable[[], None]) -> None:
    """In the forked worker: take the client's streams and environment, run `target`, never return."""
    code = 1
    try:
        _die_with_parent()
        for stream, fd in enumerate(fds):
            os.dup2(fd, stream)
            os.close(fd)
        # New Python streams on the client's descriptors (the driver's may have been redirected objects).
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        os.environ.clear()
        os.environ.update(request["environ"])
        sys.argv = list(request.get("argv") or ["sdk_worker"])
        for name in ("SIGTERM", "SIGINT", "SIGCHLD"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        target()
        code = 0
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else (0 if leaving.code is None else 1)
    except BaseException:  # noqa: BLE001 - report, then leave with a non-zero status
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class _Server:
    """The server's loop: accept requests, fork workers, relay exit statuses, reap; ends with its parent."""

    def __init__(self, listener: socket.socket, parent_pid: int, target: Callable[[], None]):
        self.listener = listener
        self.target = target
        self.parent_pid = parent_pid
        self.selector = selectors.DefaultSelector()
        self.workers: dict[int, socket.socket] = {}  # worker pid -> its client's connection
        self.stopping = False

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        while not self.stopping and os.getppid() == self.parent_pid:
            for key, _events in self.selector.select(timeout=0.05):
                if key.data == "accept":
                    self._accept()
                else:  # a client's connection is readable: it has gone away
                    self._client_gone(key.data, key.fileobj)
            self._reap()
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap(block=True)

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            request, fds = _receive_request(connection)
        except (OSError, ValueError, ConnectionError) as err:
            print(f"favor worker fork server: bad request: {err}", file=sys.stderr, flush=True)
            connection.close()
            return
        pid = os.fork()
        if pid == 0:
            self.selector.close()
            self.listener.close()
            for other in self.workers.values():
                other.close()
            connection.close()
            _run_worker(request, fds, self.target)
        for fd in fds:
            os.close(fd)
        self.workers[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ, pid)

    def _client_gone(self, pid: int, connection) -> None:
        try:
            if connection.recv(4096):
                return  # clients send nothing after their request: stray bytes are dropped
        except OSError:
            pass
        self.selector.unregister(connection)  # the client is gone: its worker goes too (reaped in _reap)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _reap(self, block: bool = False) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.workers.pop(pid, None)
            if connection is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(connection)
            with contextlib.suppress(OSError):
                connection.sendall(STATUS.pack(os.waitstatus_to_exitcode(status) & 0xFF))
            connection.close()


DEFAULT_WARM_UP = "pipelines.index.model_handler:import_worker_modules"
DEFAULT_TARGET = "pipelines.index.worker_fork_server:run_sdk_worker"


def _resolve(dotted: str) -> Callable:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


class WorkerForkServer:
    """Start with `start()` (or as a context manager) before the pipeline runs; `command` is the worker command
    line for Beam's SubprocessSDKEnvironment; `close()` when no more jobs will run (`shared_fork_server` keeps one
    per process and closes it at exit).

    warm_up: "module:function" called with `asr` in the server before it serves (imports the workers' modules);
    target: "module:function" a forked worker runs (Beam's SDK harness)."""

    def __init__(self, warm_up: str | None = DEFAULT_WARM_UP, target: str = DEFAULT_TARGET, asr: str | None = None):
        self.warm_up = warm_up
        self.target = target
        self.asr = asr
        self.process: subprocess.Popen | None = None
        self._dir: str | None = None
        self.socket_path: str | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def command(self) -> str:
        if self.socket_path is None:
            raise RuntimeError("the worker fork server is not started")
        return f"{sys.executable} -I -S {CLIENT_SCRIPT} {self.socket_path}"

    def start(self) -> "WorkerForkServer":
        """Spawn the server (a fresh interpreter: nothing of this process's threads, gRPC or LanceDB state is
        inherited); returns once it listens. It warms up while this process goes on."""
        self._dir = tempfile.mkdtemp(prefix="favor-workers-")
        self.socket_path = os.path.join(self._dir, "fork.sock")
        command = [sys.executable, "-m", "pipelines.index.worker_fork_server", "--socket", self.socket_path,
                   "--parent", str(os.getpid()), "--target", self.target]
        if self.warm_up:
            command += ["--warm-up", self.warm_up]
        if self.asr:
            command += ["--asr", self.asr]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # this checkout, importable by the server
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        # glibc gives each thread that allocates its own malloc arena and keeps freed memory in it; a worker's
        # gRPC threads then hold on to every buffer they ever received. Two arenas keep that bounded (read by
        # glibc at start-up, inherited by the forked workers). An operator's own setting wins.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30.0
        while not os.path.exists(self.socket_path):  # bound and listening before its imports
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the worker fork server did not start")
            time.sleep(0.005)
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = self.socket_path = None

    def alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            self.close()
        return self.process is not None

    def __enter__(self) -> "WorkerForkServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


_shared_server: WorkerForkServer | None = None


def shared_fork_server(asr: str | None = None) -> WorkerForkServer | None:
    """This process's worker fork server: started by the first caller (the `favor index` command starts it
    first thing, so it warms up while the driver imports) and reused by every later job of the process;
    None without fork support. It stops when the process exits."""
    global _shared_server
    if _shared_server is not None and _shared_server.alive():
        return _shared_server
    _shared_server = None
    if not fork_supported():
        return None
    _shared_server = WorkerForkServer(asr=asr).start()
    atexit.register(_shared_server.close)
    return _shared_server


def serve_main(argv: list[str] | None = None) -> int:
    """`python -m pipelines.index.worker_fork_server --socket PATH --parent PID ...`: the server process."""
    import argparse

    parser = argparse.ArgumentParser(prog="worker_fork_server")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--target", default=DEFAULT_TARGET)
    parser.add_argument("--warm-up", default=None)
    parser.add_argument("--asr", default=None)
    args = parser.parse_args(argv)
    _die_with_parent()
    if os.getppid() != args.parent:  # the parent died before the death signal was armed
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops the server
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket + ".tmp")
    listener.listen(64)  # clients queue here while the server warms up
    os.rename(args.socket + ".tmp", args.socket)  # the socket appears only once it listens
    if args.warm_up:
        _resolve(args.warm_up)(args.asr)
    _Server(listener, args.parent, _resolve(args.target)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(serve_main())
