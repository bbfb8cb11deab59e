"""A private network namespace for the WebRTC and other UDP tests.

``enter()`` moves the calling test process into a new network namespace
(``unshare(CLONE_NEWNET)``, as ``unshare -n`` does) where only loopback is up,
with :data:`ADDRESS` (10.99.0.1/32) added to ``lo`` for the clients that will not
use 127.0.0.0/8 (Chromium, aioice).  The servers and clients a test starts
afterwards are its children and inherit the namespace, so nothing a test sends
can leave the machine, and no test sees another machine's interfaces.

It is done once per process (a trial worker stays in the namespace for the
tests that follow, which only use loopback anyway).  Call it from ``setUp`` or
``setUpClass`` before starting the server.  It needs CAP_SYS_ADMIN (root, as in
CI) and iproute2's ``ip``; without them the test is skipped locally and fails
in CI (``CI=true``).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading

from tests.optional import IN_CI

from twisted.trial.unittest import SkipTest

__all__ = ["ADDRESS", "enter", "inside"]

ADDRESS = "10.99.0.1"
CLONE_NEWNET = 0x40000000

_state: dict = {}


def _fail(reason: str):
    return AssertionError(reason) if IN_CI else SkipTest(reason)


def _netns_id() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def inside() -> bool:
    """True once this process has entered its private namespace."""
    return _state.get("ns") is not None and _state["ns"] == _netns_id()


def enter() -> str:
    """Enter (once) the private namespace; return :data:`ADDRESS`."""
    if inside():
        return ADDRESS
    if "error" in _state:
        raise _fail(_state["error"])
    if threading.current_thread() is not threading.main_thread():
        raise AssertionError("netns.enter() must run on the main thread (the namespace is per thread)")
    ip = shutil.which("ip") or "/usr/sbin/ip"
    if not os.path.exists(ip):
        _state["error"] = "iproute2's ip command is missing (apt-get install iproute2)"
        raise _fail(_state["error"])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        _state["error"] = f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)} (needs root or CAP_SYS_ADMIN)"
        raise _fail(_state["error"])
    for args in (["link", "set", "lo", "up"], ["addr", "add", f"{ADDRESS}/32", "dev", "lo"]):
        done = subprocess.run([ip, *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            _state["error"] = f"ip {' '.join(args)} failed: {done.stderr.strip()}"
            raise AssertionError(_state["error"])
    _state["ns"] = _netns_id()
    return ADDRESS
