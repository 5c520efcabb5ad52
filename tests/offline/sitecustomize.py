"""No network for anything the test suite runs.

Every pytest run in this repository loads the root ``conftest.py``, which imports this file
and puts its folder on PYTHONPATH, so every Python process the run starts imports it at
start-up too: pytest itself, each notebook kernel nbval launches, and any ``python -c``
a test spawns.  It also points the proxy variables that curl, wget and pip honour at a
closed local port, so a non-Python child cannot reach the network either.

Blocked, for any address that is not this machine: ``connect`` and ``connect_ex`` (TCP
and connected UDP), ``sendto`` and ``sendmsg`` (unconnected UDP), and name resolution
(``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr``) of any name
but this machine's.  Each raises :class:`OfflineError` at once with one message, so a
notebook or test that tries to download weights or data fails loudly instead of passing
on a machine that happens to be online.
"""

import os
import socket

LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "", "ip6-localhost", "ip6-loopback",
         socket.gethostname()}
MESSAGE = "the test suite is offline: refused {what} {target!r}"


class OfflineError(RuntimeError, OSError):
    """Raised for any network use; an OSError too, so code that falls back on a failed
    connection or look-up (as network code does) takes its offline path."""

# Non-Python children: send every proxied request to a port where nothing listens.
for _name in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy",
              "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY"):
    os.environ[_name] = "http://127.0.0.1:9"
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "localhost,127.0.0.1,::1"


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return host is None or (isinstance(host, str) and (host in LOCAL or host.startswith("127.")))


def _host(address):
    return address[0] if isinstance(address, tuple) else address


def _guard(sock, address, what: str) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    if not _is_local(_host(address)):
        raise OfflineError(MESSAGE.format(what=what, target=address))


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_sendto, _sendmsg = socket.socket.sendto, getattr(socket.socket, "sendmsg", None)


def connect(self, address):
    _guard(self, address, "a connection to")
    return _connect(self, address)


def connect_ex(self, address):
    _guard(self, address, "a connection to")
    return _connect_ex(self, address)


def sendto(self, data, *args):
    _guard(self, args[-1], "a datagram to")  # sendto(data[, flags], address)
    return _sendto(self, data, *args)


def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
    if address is not None:
        _guard(self, address, "a datagram to")
        return _sendmsg(self, buffers, ancdata, flags, address)
    return _sendmsg(self, buffers, ancdata, flags)


def _resolver(original, what: str):
    def resolve(host, *args, **kwargs):
        if not _is_local(host):
            raise OfflineError(MESSAGE.format(what=what, target=host))
        return original(host, *args, **kwargs)
    resolve.__name__ = original.__name__
    return resolve


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
if _sendmsg is not None:
    socket.socket.sendmsg = sendmsg
for _fn in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
    setattr(socket, _fn, _resolver(getattr(socket, _fn), "to look up"))
