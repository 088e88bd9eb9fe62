"""A `dagster dev` process for the end-to-end tests, and a small GraphQL client for it.

The process runs in the repository root (workspace.yaml is picked up from the cwd, no flags) in its
own session/process group, with DAGSTER_HOME = a temp dir holding the repo's dagster.yaml and TMPDIR
a temp dir; the resources come from FAVOR_* environment variables. `stop()` interrupts the group
and kills what is left.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")
STARTUP_TIMEOUT_S = 180.0
STOP_GRACE_S = 20.0
POLL_INTERVAL_S = 2.0
LOCATION_NAME = "favor"  # workspace.yaml
REPOSITORY_NAME = "__repository__"  # a Definitions object's repository

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status tags { key value } } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}"""

RUN_STATUS = "query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status tags { key value } } } }"
TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterDev:
    process: subprocess.Popen
    url: str
    home: Path
    log_path: Path

    def log_tail(self, n_chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-n_chars:] if self.log_path.exists() else ""

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read()

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url + "/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def launch_run(self, job_name: str, run_config: dict, tags: dict[str, str]) -> dict:
        params = {
            "selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME, "jobName": job_name},
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        launched = self.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]

    def wait_for_run(self, run_id: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]
            if run.get("status") in TERMINAL_STATUSES or time.monotonic() > deadline:
                return run
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)  # whatever of the group is left (code servers, daemon)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STOP_GRACE_S)


def start_dagster_dev(root: Path, env_extra: dict[str, str]) -> DagsterDev:
    """`dagster dev` on 127.0.0.1:<free port> from the repo root; returns once /server_info answers."""
    home, tmp = root / "dagster_home", root / "tmp"
    home.mkdir(parents=True)
    tmp.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home), TMPDIR=str(tmp), **env_extra)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log_path = root / "dagster_dev.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(DAGSTER), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    server = DagsterDev(process=process, url=f"http://127.0.0.1:{port}", home=home, log_path=log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
        try:
            info = json.loads(server.get("/server_info"))
            if info.get("dagster_version"):
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"dagster dev did not answer within {STARTUP_TIMEOUT_S} s:\n{server.log_tail()}")
        time.sleep(POLL_INTERVAL_S)
