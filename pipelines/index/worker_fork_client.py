"""The command Beam's local runner starts for each SDK worker when workers are forked (see worker_fork_server.py).

    python -I -S worker_fork_client.py SOCKET

Standard library only, run without `site` (it starts in a few milliseconds): it connects to the fork
server's Unix socket, sends its environment (where the runner put the control, logging and pipeline-option
addresses for this worker) and its standard streams, then waits. The server forks a warm worker with them
and, when that worker exits, sends back its exit status, which becomes this process's. Killing this process
(the runner does so when a job fails) closes the socket, and the server then kills the worker.
"""

import json
import os
import signal
import socket
import struct
import sys

STATUS = struct.Struct("!i")  # the worker's exit status, network order


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: worker_fork_client.py SOCKET\n")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))  # leave at once: the server sees the socket close
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(argv[1])
    except OSError as err:
        sys.stderr.write(f"favor worker: cannot reach the worker fork server at {argv[1]}: {err}\n")
        return 1
    request = json.dumps({"environ": dict(os.environ), "argv": sys.argv}).encode()
    socket.send_fds(connection, [struct.pack("!I", len(request))], [0, 1, 2])  # the length, with the streams
    connection.sendall(request)
    reply = b""
    while len(reply) < STATUS.size:
        chunk = connection.recv(STATUS.size - len(reply))
        if not chunk:
            sys.stderr.write("favor worker: the worker fork server went away\n")
            return 1
        reply += chunk
    return STATUS.unpack(reply)[0]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
