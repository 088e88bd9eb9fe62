"""The worker fork server: warm workers forked on request, with the requester's environment and streams, their
exit status relayed, and nothing left running when a client, the server or the driver goes away."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.index.worker_fork_server import WorkerForkServer, fork_supported

pytestmark = pytest.mark.skipif(not fork_supported(), reason="forked workers need Linux")

WARM = {}  # set by the warm-up, in the server; a forked worker inherits it


HERE = "tests.pipelines.test_worker_fork_server"


def _warm_up(asr):
    WARM["imported"] = f"yes-{asr}"
    WARM["server_pid"] = os.getpid()


def _report_and_exit():
    print(f"{os.environ.get('FAVOR_TEST_VALUE')} {WARM.get('imported')} {os.getpid()} {os.getppid()} "
          f"{WARM.get('server_pid')}", flush=True)
    sys.exit(int(os.environ.get("FAVOR_TEST_EXIT", "0")))


def _sleep_forever():
    with open(os.environ["FAVOR_TEST_PID_FILE"], "w") as handle:
        handle.write(str(os.getpid()))
    while True:
        time.sleep(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _client(server, **env):
    return subprocess.run(server.command, shell=True, capture_output=True, text=True, timeout=30,
                          env={**os.environ, **env})


def test_a_forked_worker_gets_the_clients_environment_streams_and_warm_state_and_its_status_comes_back():
    with WorkerForkServer(warm_up=f"{HERE}:_warm_up", target=f"{HERE}:_report_and_exit", asr="x") as server:
        first = _client(server, FAVOR_TEST_VALUE="alpha", FAVOR_TEST_EXIT="0")
        second = _client(server, FAVOR_TEST_VALUE="beta", FAVOR_TEST_EXIT="7")
    assert first.returncode == 0 and second.returncode == 7
    value, warm, pid, parent, server_pid = first.stdout.split()
    assert (value, warm) == ("alpha", "yes-x")  # the client's environment, the server's imports
    assert parent == server_pid and pid != server_pid  # forked from the warm server
    assert second.stdout.split()[:2] == ["beta", "yes-x"] and second.stdout.split()[2] != pid  # one process per client


def _fail():
    raise RuntimeError("worker broke")


def test_a_worker_that_raises_exits_non_zero_with_its_traceback_on_the_clients_stderr():
    with WorkerForkServer(warm_up=None, target=f"{HERE}:_fail") as server:
        result = _client(server)
    assert result.returncode == 1
    assert "RuntimeError: worker broke" in result.stderr


def test_killing_the_client_kills_its_worker(tmp_path):
    pid_file = tmp_path / "worker.pid"
    with WorkerForkServer(warm_up=None, target=f"{HERE}:_sleep_forever") as server:
        client = subprocess.Popen(server.command, shell=True, env={**os.environ, "FAVOR_TEST_PID_FILE": str(pid_file)},
                                  start_new_session=True)
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        os.killpg(client.pid, signal.SIGKILL)  # the shell and the client, as the runner's kill would
        client.wait()
        assert _wait_gone(worker)


def test_close_stops_the_server_and_its_running_workers(tmp_path):
    pid_file = tmp_path / "worker.pid"
    server = WorkerForkServer(warm_up=None, target=f"{HERE}:_sleep_forever").start()
    client = subprocess.Popen(server.command, shell=True, env={**os.environ, "FAVOR_TEST_PID_FILE": str(pid_file)})
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker, server_pid, socket_path = int(pid_file.read_text()), server.pid, server.socket_path
    server.close()
    assert _wait_gone(worker) and not _alive(server_pid)
    assert client.wait(timeout=10) != 0  # the client learns its server went away
    assert not os.path.exists(socket_path)


def test_an_unreachable_server_is_one_clear_line_and_a_failure(tmp_path):
    server = WorkerForkServer(warm_up=None, target=f"{HERE}:_report_and_exit").start()
    command = server.command
    server.close()
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cannot reach the worker fork server" in result.stderr
