"""GB28181: SIP messages (datagrams and TCP streams) into the SIP server
core, program streams (PS) into the demuxer, and RFC 4571-framed RTP of PS
into one SSRC's ingest (PS, then the elementary stream parsers)."""

from __future__ import annotations

import random

from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.ps import PsDemuxer
from srs_twisted.codec.sip import SipStreamParser, parse_datagram
from srs_twisted.gb.core import SipServer, SipSettings
from srs_twisted.gb.media import MediaError, PsIngest, Rfc4571Framer

from ..base import demux, pieces, target


@target("sip", allowed=(CodecError,), max_len=8192)
def sip_target(data: bytes):
    """Byte 0 even: one UDP datagram; odd: a TCP stream.  Every message
    goes to a SIP server core, whose timers then run for two minutes."""
    if not data:
        return None
    if data[0] & 1:
        parser = SipStreamParser()
        messages = []
        for piece in pieces(data):  # byte 0 also picks the read size
            messages += parser.feed(piece)
    else:
        messages = [parse_datagram(data[1:])]
    server = SipServer(SipSettings(), rng=random.Random(1))
    now = 100.0
    for msg in messages:
        server.receive(("10.0.0.5", 5060), msg, now, "UDP" if not data[0] & 1 else "TCP", "10.0.0.5:5060")
        server.events()
        now += 1.0
    for step in range(12):
        server.poll(now + step * 10.0)
        server.events()
    return len(messages)


@target("ps", allowed=(CodecError,), max_len=65536)
def ps_target(data: bytes):
    return len(demux(PsDemuxer(max_frame=512 * 1024), data))


@target("gb_media", allowed=(MediaError, CodecError), max_len=65536)
def gb_media(data: bytes):
    """A device's media TCP connection: RFC 4571 frames of RTP carrying PS."""
    framer = Rfc4571Framer()
    ingest = PsIngest()
    out = 0
    try:
        for piece in pieces(data):
            for packet in framer.feed(piece):
                out += len(ingest.rtp(packet))
        out += len(ingest.flush())
    finally:
        ingest.close()
    return out
