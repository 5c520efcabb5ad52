"""The offline promise has no holes: every network path is refused, in every process.

The guard (``tests/offline/sitecustomize.py``) is loaded by the repository's root
``conftest.py`` for any pytest run, so a notebook run on its own is guarded too.  Each
path a program could use to reach the network is tried against a documentation address
(192.0.2.1, TEST-NET-1, never routed) and a name that would need DNS.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAR = ("192.0.2.1", 80)
OFFLINE = "the test suite is offline"


def refused(call) -> str:
    with pytest.raises(RuntimeError, match=OFFLINE) as err:
        call()
    assert isinstance(err.value, OSError)  # network code's fallbacks see an OSError
    return str(err.value)


@pytest.mark.unit
def test_tcp_udp_and_name_resolution_are_refused_in_process():
    refused(lambda: socket.create_connection(FAR, timeout=1))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        refused(lambda: s.connect_ex(FAR))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        refused(lambda: s.sendto(b"x", FAR))
        refused(lambda: s.sendto(b"x", 0, FAR))
        refused(lambda: s.sendmsg([b"x"], [], 0, FAR))
        refused(lambda: s.connect(FAR))
    for resolve in (lambda: socket.getaddrinfo("example.com", 443),
                    lambda: socket.gethostbyname("example.com"),
                    lambda: socket.gethostbyname_ex("example.com"),
                    lambda: socket.gethostbyaddr("192.0.2.1")):
        assert "example.com" in refused(resolve) or "192.0.2.1" in refused(resolve)


@pytest.mark.unit
def test_this_machine_stays_reachable():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert socket.getaddrinfo("localhost", 80)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("127.0.0.1", 9))


def test_child_python_processes_are_guarded():
    for code in ("import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)",
                 "import socket; socket.getaddrinfo('example.com', 443)",
                 "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                 ".sendto(b'x', ('192.0.2.1', 53))"):
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=60)
        assert child.returncode != 0 and OFFLINE in child.stderr, (code, child.stderr[-300:])


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_a_non_python_child_goes_nowhere():
    child = subprocess.run(["curl", "-sS", "--max-time", "10", "http://example.com/"],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode != 0, "curl reached the network from inside the test suite"


def test_a_pytest_run_outside_tests_is_guarded_too(tmp_path):
    """A notebook or file run on its own (``pytest chapters/x.ipynb``) loads no tests/conftest.py;
    the root conftest.py still guards it."""
    probe = ROOT / f".offline-probe-{uuid.uuid4().hex[:8]}"
    probe.mkdir()
    try:
        (probe / "test_probe.py").write_text(
            "import socket, pytest\n"
            "def test_probe():\n"
            "    with pytest.raises(RuntimeError, match='offline'):\n"
            "        socket.getaddrinfo('example.com', 443)\n")
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-o", "addopts=", str(probe / "test_probe.py")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    finally:
        shutil.rmtree(probe)
