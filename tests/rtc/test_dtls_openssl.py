"""Interop: our DTLS endpoint against another implementation, OpenSSL's command-line s_server and s_client.

Integration-style: a real UDP socket on 127.0.0.1, the real clock, and the
``openssl`` binary (the system's OpenSSL, a different build from the one in
pyOpenSSL's wheel) as the peer.  Each side checks what the other exported:
s_server/s_client print the RFC 5764 keying material, which must be the keys
our HandshakeComplete carries.  Every wait has a deadline; a missing openssl
skips locally and fails in CI.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from twisted.trial import unittest
from twisted.trial.unittest import SkipTest

from srs_twisted.rtc.dtls import ApplicationData, Closed, DtlsContext, DtlsEndpoint, Error, HandshakeComplete
from tests.integration.harness import IN_CI
from tests.rtc.pair import certificate

DEADLINE = 30.0  # seconds, for each phase; CI is a busy 2-core box
KEYING = ["-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", "60"]
SRTP = ["-use_srtp", "SRTP_AES128_CM_SHA1_80"]


def openssl_binary() -> str:
    path = shutil.which("openssl")
    if path:
        return path
    message = "the openssl command is not installed (apt-get install openssl)"
    if IN_CI:
        raise AssertionError(message)
    raise SkipTest(message)


class Peer:
    """An openssl s_server or s_client process whose output we collect without blocking."""

    def __init__(self, test: unittest.TestCase, args: list[str]) -> None:
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        os.set_blocking(self.process.stdout.fileno(), False)
        self.output = b""
        test.addCleanup(self.stop)

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def read(self) -> None:
        try:
            chunk = self.process.stdout.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            self.output += chunk

    def wait_for(self, text: bytes, deadline: float = DEADLINE) -> None:
        end = time.monotonic() + deadline
        while text not in self.output:
            if time.monotonic() > end or self.process.poll() is not None:
                self.read()
                if text in self.output:
                    return
                raise AssertionError(f"openssl never printed {text!r}; it printed:\n{self.output.decode(errors='replace')}")
            select.select([self], [], [], 0.1)
            self.read()

    def keying_material(self) -> bytes:
        self.wait_for(b"Keying material: ")
        line = self.output.split(b"Keying material: ", 1)[1].split(b"\n", 1)[0]
        return bytes.fromhex(line.strip().decode())

    def send_line(self, text: bytes) -> None:
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=DEADLINE)
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


class Driver:
    """Runs one of our endpoints over a UDP socket on the real clock, dropping chosen datagrams."""

    def __init__(self, endpoint: DtlsEndpoint, sock: socket.socket, peer: Peer, drop_out=(), drop_in=()) -> None:
        self.endpoint, self.sock, self.peer = endpoint, sock, peer
        self.drop_out, self.drop_in = set(drop_out), set(drop_in)
        self.sent = self.received = 0
        self.batches: list[int] = []  # datagrams per flush
        self.address = None
        self.events: list = []

    def run_until(self, done, deadline: float = DEADLINE) -> None:
        end = time.monotonic() + deadline
        while not done():
            if time.monotonic() > end:
                self.peer.read()
                raise AssertionError(
                    f"timed out in state {self.endpoint.state}, events {self.events}, "
                    f"retransmits {self.endpoint.retransmits}; openssl said:\n{self.peer.output.decode(errors='replace')}"
                )
            self.flush()
            timeout = self.endpoint.next_timeout()
            wait = 0.1 if timeout is None else min(0.1, max(0.0, timeout - time.monotonic()))
            readable, _, _ = select.select([self.sock, self.peer], [], [], wait)
            if self.peer in readable:
                self.peer.read()
            if self.sock in readable:
                datagram, self.address = self.sock.recvfrom(65536)
                self.received += 1
                if self.received not in self.drop_in:
                    self.endpoint.receive_data(datagram, time.monotonic())
            self.endpoint.handle_timeout(time.monotonic())
            while (event := self.endpoint.next_event()) is not None:
                self.events.append(event)
        self.flush()

    def flush(self) -> None:
        datagrams = self.endpoint.data_to_send()
        if datagrams:
            self.batches.append(len(datagrams))
        for datagram in datagrams:
            self.sent += 1
            if self.sent not in self.drop_out and self.address is not None:
                self.sock.sendto(datagram, self.address)

    def first(self, kind):
        return next((e for e in self.events if isinstance(e, kind)), None)


def write_credentials(directory: str, cert) -> tuple[str, str]:
    cert_path, key_path = os.path.join(directory, "peer.pem"), os.path.join(directory, "peer.key")
    with open(cert_path, "wb") as f:
        f.write(cert.cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(cert.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_path, key_path


class OpensslInteropTests(unittest.TestCase):
    def setUp(self):
        self.openssl = openssl_binary()
        self.directory = tempfile.mkdtemp(prefix="srs-dtls-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.peer_cert = certificate(True, 3)
        self.cert_path, self.key_path = write_credentials(self.directory, self.peer_cert)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.sock.close)
        self.sock.bind(("127.0.0.1", 0))

    def assertKeys(self, event: HandshakeComplete, material: bytes, we_are_client: bool):
        client = material[0:16] + material[32:46]
        server = material[16:32] + material[46:60]
        self.assertEqual(event.local_key, client if we_are_client else server)
        self.assertEqual(event.remote_key, server if we_are_client else client)
        self.assertEqual(event.srtp_profile, "SRTP_AES128_CM_SHA1_80")
        self.assertEqual(event.peer_fingerprint, self.peer_cert.fingerprint)

    def test_our_client_against_s_server(self):
        peer = Peer(self, [
            self.openssl, "s_server", "-dtls1_2", "-accept", "127.0.0.1:0", "-cert", self.cert_path,
            "-key", self.key_path, "-verify", "1", "-naccept", "1", *SRTP, *KEYING,
        ])
        peer.wait_for(b"ACCEPT 127.0.0.1:")
        port = int(peer.output.split(b"ACCEPT 127.0.0.1:", 1)[1].split(b"\n", 1)[0])
        # An RSA certificate at MTU 400 spreads our second flight over several datagrams; the
        # ClientHello is lost, so our retransmission timer (on the real clock) must bring it back.
        ours = DtlsContext(certificate(False)).endpoint(True, self.peer_cert.fingerprint, mtu=400)
        driver = Driver(ours, self.sock, peer, drop_out={1})
        driver.address = ("127.0.0.1", port)
        ours.start(time.monotonic())
        driver.run_until(lambda: ours.state != DtlsEndpoint.HANDSHAKING)
        self.assertIsNone(driver.first(Error))
        # On the real clock OpenSSL's own timer has expired when ours fires: it retransmits, not our copy.
        self.assertEqual((ours.retransmits, ours.replays), (1, 0))
        self.assertKeys(driver.first(HandshakeComplete), peer.keying_material(), we_are_client=True)
        peer.wait_for(b"SRTP Extension negotiated, profile=SRTP_AES128_CM_SHA1_80")

        peer.send_line(b"hello from s_server\n")
        driver.run_until(lambda: driver.first(ApplicationData) is not None)
        self.assertEqual(driver.first(ApplicationData).data, b"hello from s_server\n")

        ours.close()
        driver.flush()
        peer.wait_for(b"DONE")
        self.assertEqual(peer.process.wait(timeout=DEADLINE), 0)

    def test_our_server_against_s_client(self):
        port = self.sock.getsockname()[1]
        peer = Peer(self, [
            self.openssl, "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{port}", "-cert", self.cert_path,
            "-key", self.key_path, *SRTP, *KEYING,
        ])
        # Our server flight is cut to MTU 400 (several datagrams, which s_client reassembles) and
        # its first datagram is lost, so the flight must be retransmitted.
        ours = DtlsContext(certificate(False)).endpoint(False, self.peer_cert.fingerprint, mtu=400)
        driver = Driver(ours, self.sock, peer, drop_out={1})
        driver.run_until(lambda: ours.state != DtlsEndpoint.HANDSHAKING)
        self.assertIsNone(driver.first(Error))
        self.assertGreaterEqual(driver.batches[0], 3)
        self.assertGreaterEqual(max(driver.batches[1:]), 3, driver.batches)  # the whole flight went out again
        self.assertKeys(driver.first(HandshakeComplete), peer.keying_material(), we_are_client=False)

        peer.send_line(b"ping\n")
        driver.run_until(lambda: driver.first(ApplicationData) is not None)
        self.assertEqual(driver.first(ApplicationData).data, b"ping\n")

        # s_client's close_notify reaches us when its input ends.
        peer.process.stdin.close()
        driver.run_until(lambda: driver.first(Closed) is not None)
        self.assertEqual(driver.first(Closed), Closed(by_peer=True))
        self.assertEqual(peer.process.wait(timeout=DEADLINE), 0)

    def test_s_client_with_the_wrong_certificate_is_refused(self):
        port = self.sock.getsockname()[1]
        peer = Peer(self, [
            self.openssl, "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{port}", "-cert", self.cert_path,
            "-key", self.key_path, *SRTP,
        ])
        expected = certificate(True, 2).fingerprint  # the SDP named another certificate
        ours = DtlsContext(certificate(True)).endpoint(False, expected)
        driver = Driver(ours, self.sock, peer)
        driver.run_until(lambda: ours.state != DtlsEndpoint.HANDSHAKING)
        self.assertEqual(ours.state, DtlsEndpoint.FAILED)
        self.assertIn(f"{self.peer_cert.fingerprint} does not match", driver.first(Error).message)
        self.assertIsNone(driver.first(HandshakeComplete))
