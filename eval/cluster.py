"""A real Ray cluster of one or more nodes on this machine, listening on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# Ray swaps a node address of 127.0.0.1 for the machine's network address, and then listens on
# every interface, unless told that this is a one-machine cluster; told so, `ray start`
# refuses a second node. The second node is started through the same command with that swap
# turned off, so that both nodes, and the driver, stay on the loopback interface.
LOOPBACK = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
_SECOND_NODE = (
    "import sys; import ray._private.services as s; s.resolve_ip_for_localhost = lambda h: h;"
    " from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_nodes(address: str) -> int:
    out = subprocess.run(
        [RAY, "status", f"--address={address}"],
        env=LOOPBACK,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    active = out.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in out else ""
    return len(re.findall(r"\bnode_[0-9a-f]+", active))


def stop() -> None:
    subprocess.run([RAY, "stop", "--force"], env=LOOPBACK, capture_output=True, timeout=120)


@contextlib.contextmanager
def local_cluster(nodes: int = 2, *, wait_seconds: float = 90.0) -> Iterator[str]:
    """Start a head node and `nodes - 1` more, one CPU each, on 127.0.0.1; stop all after
    (with `ray stop`, which stops every Ray process of this machine).

    Yields:
        The cluster's address, `127.0.0.1:PORT`.
    """
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run(
            [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
            env=LOOPBACK,
            check=True,
            capture_output=True,
            timeout=120,
        )
        for _ in range(nodes - 1):
            subprocess.run(
                [sys.executable, "-c", _SECOND_NODE, "start", f"--address={address}", *common],
                env={**LOOPBACK, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"},
                check=True,
                capture_output=True,
                timeout=120,
            )
        deadline = time.monotonic() + wait_seconds
        while _alive_nodes(address) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{nodes} Ray nodes did not join within {wait_seconds} s")
            time.sleep(1)
        yield address
    finally:
        stop()
