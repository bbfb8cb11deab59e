"""The private network namespace the WebRTC tests run in (tests/integration/netns.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from twisted.trial import unittest

from tests.integration import netns


class PrivateNamespace(unittest.TestCase):
    def test_children_share_a_namespace_with_loopback_only(self):
        before = os.readlink("/proc/thread-self/ns/net")
        address = netns.enter()
        self.assertEqual(address, "10.99.0.1")
        self.assertTrue(netns.inside())
        now = os.readlink("/proc/thread-self/ns/net")
        if before == now:
            # a previous test of this trial worker entered it already
            self.assertEqual(netns.enter(), address)
        child = subprocess.run([sys.executable, "-c", "import os; print(os.readlink('/proc/self/ns/net'))"],
                               capture_output=True, text=True, timeout=60, check=True)
        self.assertEqual(child.stdout.strip(), now)
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=60,
                               check=True).stdout.splitlines()
        self.assertEqual([line.split(":")[1].strip() for line in links], ["lo"])
        addresses = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, timeout=60,
                                   check=True).stdout
        self.assertIn("127.0.0.1/8", addresses)
        self.assertIn("10.99.0.1/32", addresses)
        # UDP on the private address works both ways
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.bind((address, 0))
        b.bind((address, 0))
        b.settimeout(30)
        a.sendto(b"ping", b.getsockname())
        self.assertEqual(b.recvfrom(16), (b"ping", a.getsockname()))
        # and nothing routes off the machine
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(c.close)
        with self.assertRaises(OSError):
            c.connect(("192.0.2.1", 9))
