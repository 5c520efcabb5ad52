"""No network for anything the test suite runs.

The test suite puts this folder on PYTHONPATH (tests/conftest.py), so every Python
process it starts imports this file at start-up: pytest itself and each notebook
kernel nbval launches.  Connections to anything but this machine raise at once, so
a notebook or test that tries to download weights or data fails loudly instead of
passing on a machine that happens to be online.
"""

import socket

LOCAL = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
_connect = socket.socket.connect


def _local_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in LOCAL and self.family != getattr(socket, "AF_UNIX", None):
        raise RuntimeError(f"the test suite is offline: refused a connection to {address!r}")
    return _connect(self, address)


socket.socket.connect = _local_only
