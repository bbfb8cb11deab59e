"""Write-through for live players (srs_twisted.directwrite): a fake socket under a real
tcp.Connection on a MemoryReactor, so what goes to the socket and what Twisted queues
is visible byte for byte."""

from __future__ import annotations

import errno

from twisted.internet import protocol, tcp
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial import unittest

from srs_twisted.directwrite import body_writer, chunk_of, direct_writer, response_writer
from srs_twisted.limits import _Counted


class FakeSocket:
    def __init__(self, room: int = 1 << 30, error: int | None = None) -> None:
        self.room = room  # bytes the kernel takes before EAGAIN
        self.error = error
        self.sent = b""
        self.calls = 0

    def setblocking(self, flag) -> None:
        pass

    def fileno(self) -> int:
        return 99

    def _take(self, data: bytes) -> int:
        self.calls += 1
        if self.error is not None:
            raise OSError(self.error, "fake")
        if not self.room:
            raise BlockingIOError(errno.EAGAIN, "fake")
        n = min(len(data), self.room)
        self.room -= n
        self.sent += bytes(data[:n])
        return n

    def send(self, data) -> int:
        return self._take(data)


def connection(sock: FakeSocket) -> tcp.Connection:
    conn = tcp.Connection(sock, protocol.Protocol(), MemoryReactor())
    conn.connected = 1
    return conn


def queued(conn) -> bytes:
    return conn.dataBuffer[conn.offset:] + b"".join(conn._tempDataBuffer)


class DirectWriterTests(unittest.TestCase):
    def test_idle_connection_sends_at_once(self):
        sock = FakeSocket()
        conn = connection(sock)
        write = direct_writer(conn)
        write(b"abc")
        write(b"def")
        self.assertEqual((sock.sent, queued(conn), sock.calls), (b"abcdef", b"", 2))
        self.assertEqual(conn.reactor.getWriters(), [])  # never registered with the reactor

    def test_what_the_kernel_does_not_take_is_queued_and_keeps_the_order(self):
        sock = FakeSocket(room=4)
        conn = connection(sock)
        write = direct_writer(conn)
        write(b"0123456789")
        self.assertEqual((sock.sent, queued(conn)), (b"0123", b"456789"))
        sock.room = 100
        write(b"ab")  # something is queued: behind it, not around it
        self.assertEqual((sock.sent, queued(conn), sock.calls), (b"0123", b"456789ab", 1))

    def test_eagain_queues_everything(self):
        sock = FakeSocket(room=0)
        conn = connection(sock)
        direct_writer(conn)(b"xyz")
        self.assertEqual((sock.sent, queued(conn)), (b"", b"xyz"))
        self.assertEqual(conn.reactor.getWriters(), [conn])  # Twisted sends it when writable

    def test_a_socket_error_is_left_to_twisted(self):
        sock = FakeSocket(error=errno.ECONNRESET)
        conn = connection(sock)
        direct_writer(conn)(b"xyz")
        self.assertEqual(queued(conn), b"xyz")  # Twisted's doWrite meets the error and closes

    def test_a_closed_connection_takes_nothing(self):
        sock = FakeSocket()
        conn = connection(sock)
        conn.connected = 0
        direct_writer(conn)(b"xyz")
        self.assertEqual((sock.calls, queued(conn)), (0, b""))

    def test_through_the_connection_counter_only(self):
        sock = FakeSocket()
        conn = connection(sock)
        wrapper = _Counted.__new__(_Counted)
        wrapper.transport = conn
        direct_writer(wrapper)(b"abc")
        self.assertEqual(sock.sent, b"abc")
        other = StringTransport()
        self.assertEqual(direct_writer(other), other.write)
        conn.TLS = True
        self.assertEqual(direct_writer(conn), conn.write)


class Counter:
    sent_bytes = 0


class CountingTests(unittest.TestCase):
    def test_every_byte_given_is_counted_sent_or_queued(self):
        sock = FakeSocket(room=4)
        counter = Counter()
        write = direct_writer(connection(sock), counter)
        write(b"abcdef")
        write(b"gh")
        self.assertEqual((sock.sent, counter.sent_bytes), (b"abcd", 8))

    def test_a_transport_written_through_twisted_is_counted_too(self):
        other = StringTransport()
        counter = Counter()
        direct_writer(other, counter)(b"abc")
        self.assertEqual((other.value(), counter.sent_bytes), (b"abc", 3))


class FakeRequest:
    def __init__(self, transport, chunked=True) -> None:
        self.channel = type("Channel", (), {"transport": transport})()
        self.startedWriting = False
        self.finished = False
        self._disconnected = False
        self.method = b"GET"
        self.chunked = chunked
        self.sentLength = 0
        self.written = []

    def write(self, data) -> None:  # twisted.web's, as far as this test needs
        if not self.startedWriting:
            self.startedWriting = True
            self.channel.transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        self.sentLength += len(data)
        self.written.append(data)


class ResponseWriterTests(unittest.TestCase):
    def test_headers_through_twisted_then_chunks_direct(self):
        sock = FakeSocket()
        conn = connection(sock)
        conn.write = lambda data: sock.send(data)  # the headers' write, here straight to the socket
        request = FakeRequest(conn)
        write = response_writer(request)
        write(b"")
        write(b"FLV" * 10)
        write(b"")
        self.assertEqual(sock.sent, b"HTTP/1.1 200 OK\r\n\r\n" + b"1e\r\n" + b"FLV" * 10 + b"\r\n")
        self.assertEqual((request.written, request.sentLength), ([b""], 30))

    def test_not_chunked_and_finished(self):
        sock = FakeSocket()
        conn = connection(sock)
        request = FakeRequest(conn, chunked=False)
        request.startedWriting = True
        write = response_writer(request)
        write(b"abc")
        self.assertEqual(sock.sent, b"abc")
        request._disconnected = True
        write(b"def")
        self.assertEqual((sock.sent, request.written), (b"abc", [b"def"]))

    def test_players_sharing_bytes_share_one_framed_chunk(self):
        socks = [FakeSocket(), FakeSocket()]
        writers = []
        for sock in socks:
            request = FakeRequest(connection(sock))
            request.startedWriting = True
            writers.append(response_writer(request))
        data = b"tag" * 100
        for write in writers:
            write(data)
        self.assertEqual([s.sent for s in socks], [b"12c\r\n" + data + b"\r\n"] * 2)
        self.assertIs(chunk_of(data), chunk_of(data))  # framed once for the run
        other = bytes(bytearray(data))  # equal, not the same object: framed again, same bytes
        self.assertEqual(chunk_of(other), chunk_of(data))


class BodyWriterTests(unittest.TestCase):
    def test_none_until_the_headers_are_out_and_for_head_and_tls(self):
        conn = connection(FakeSocket())
        request = FakeRequest(conn)
        self.assertIsNone(body_writer(request))
        request.startedWriting = True
        self.assertIsNotNone(body_writer(request))
        request.method = b"HEAD"
        self.assertIsNone(body_writer(request))
        request.method = b"GET"
        conn.TLS = True
        self.assertIsNone(body_writer(request))

    def test_counts_the_body_not_the_framing(self):
        sock = FakeSocket()
        request = FakeRequest(connection(sock))
        request.startedWriting = True
        counter = Counter()
        write = body_writer(request, counter)
        write(b"x" * 17)
        self.assertEqual((sock.sent, counter.sent_bytes, request.sentLength), (b"11\r\n" + b"x" * 17 + b"\r\n", 17, 17))


class HttpSinkUpgradeTests(unittest.TestCase):
    def test_the_sink_takes_the_direct_write_once_its_header_is_out(self):
        from srs_twisted.http.stream import HttpStreamSink

        sock = FakeSocket()
        conn = connection(sock)
        conn.write = lambda data: sock.send(data)
        request = FakeRequest(conn)
        source = type("Source", (), {"outputs": {}, "video_sh": None, "audio_sh": None, "metadata": None})()
        asked = []

        def direct(sink):
            asked.append(sink)
            return body_writer(request, sink)

        sink = HttpStreamSink(source, "aac", response_writer(request), direct=direct)
        sink.write(b"")  # nothing out yet (AAC has no header): not asked
        self.assertEqual(asked, [])
        sink.write(b"one")
        sink.write(b"two")
        self.assertEqual(asked, [sink])
        self.assertIn("write", vars(sink))  # the direct write took the method's place
        self.assertEqual(sink.sent_bytes, 6)
        self.assertEqual(sock.sent, b"HTTP/1.1 200 OK\r\n\r\n3\r\ntwo\r\n")
        self.assertEqual(request.written, [b"one"])
