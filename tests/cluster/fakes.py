"""Fakes for the cluster tests: upstream connections and a connector that
hands out Deferreds the test fires, a player sink, packets, a context."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock

from srs_twisted import config as srs_config
from srs_twisted.context import ClientInfo, ServerContext
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket
from srs_twisted.url import discover


def make_ctx(conf: str) -> ServerContext:
    return ServerContext(srs_config.load_string(conf), Clock())


class FakeTransport:
    def __init__(self):
        self.producer = None
        self.aborted = False
        self.paused = False

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def abortConnection(self):
        self.aborted = True
        self.conn.lose()

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False


class FakeConn:
    """An upstream connection: records what is published to it."""

    def __init__(self, on_packet=None):
        self.on_packet = on_packet
        self.done = defer.Deferred()
        self.written: list[MediaPacket] = []
        self.closed = False
        self.transport = FakeTransport()
        self.transport.conn = self
        self.fail_writes = False

    def write(self, pkt):
        if self.fail_writes:
            raise ConnectionError("boom")
        self.written.append(pkt)

    def close(self):
        self.closed = True
        self.lose()

    def lose(self):
        if not self.done.called:
            self.done.callback(None)


class Attempt:
    def __init__(self, target, mode, on_packet, kw):
        self.target = target
        self.mode = mode
        self.on_packet = on_packet
        self.kw = kw
        self.cancelled = False
        self.d = defer.Deferred(self._cancel)
        self.conn = None

    def _cancel(self, _d):
        self.cancelled = True

    def succeed(self) -> FakeConn:
        self.conn = FakeConn(self.on_packet)
        self.d.callback(self.conn)
        return self.conn

    def fail(self, exc=None):
        self.d.errback(exc or ConnectionRefusedError("refused"))


class FakeConnector:
    """Stands in for rtmp_connect / flv_connect: each call is an Attempt the
    test resolves."""

    def __init__(self, auto=False):
        self.attempts: list[Attempt] = []
        self.auto = auto  # succeed at once

    def __call__(self, reactor, target, mode="play", on_packet=None, **kw):
        a = Attempt(target, mode, on_packet, kw)
        self.attempts.append(a)
        if self.auto:
            a.succeed()
        return a.d

    def flv(self, reactor, url, on_packet=None, **kw):
        return self(reactor, url, "flv", on_packet, **kw)

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    def live(self) -> list[FakeConn]:
        return [a.conn for a in self.attempts if a.conn is not None and not a.conn.done.called]


class Sink:
    """A player: counts what the source writes to it."""

    def __init__(self):
        self.wire_key = ("test", id(self))  # its own: encode sees every packet it is sent
        self.packets: list[MediaPacket] = []
        self.events: list[str] = []

    def encode(self, pkt):
        self.packets.append(pkt)
        return b"x"

    def write(self, data):
        pass

    def stream_published(self):
        self.events.append("published")

    def stream_unpublished(self):
        self.events.append("unpublished")


def video(dts, key=False, sh=False):
    return MediaPacket(VIDEO, dts, b"\x17" if key or sh else b"\x27", codec="h264",
                       keyframe=key or sh, sequence_header=sh)


def audio(dts, sh=False):
    return MediaPacket(AUDIO, dts, b"\xaf", codec="aac", sequence_header=sh)


def meta():
    return MediaPacket(DATA, 0, b"\x02\x00\x0aonMetaData")


def gop(start: int, frames: int = 25, step: int = 40):
    """One GOP: a keyframe then frames, with audio between."""
    out = [video(start, key=True)]
    for i in range(1, frames):
        out.append(audio(start + i * step - 5))
        out.append(video(start + i * step))
    return out


def add_player(ctx, source, tc_url="rtmp://127.0.0.1/live", stream=None, protocol="rtmp") -> tuple:
    """A player as the adapters make one: a client entry, then a consumer."""
    req = discover(tc_url, stream or source.stream)
    req.vhost = source.vhost
    client = ClientInfo(ip="127.0.0.1", protocol=protocol, request=req, type="rtmp-play", source=source)
    client.started = ctx.clock.seconds() + len(ctx.clients) * 1e-6
    ctx.add_client(client)
    sink = Sink()
    consumer = source.subscribe(sink)
    return client, sink, consumer


def remove_player(ctx, player) -> None:
    client, _sink, consumer = player
    consumer.close()
    ctx.remove_client(client)
