#!/usr/bin/env python3
"""A lean WHIP publisher for the WebRTC benchmarks (issue 10 section 4): H.264 + Opus over SRTP in real time.

Video: the H.264 frames of an FLV clip (``bench.make_clip(baseline=True)``:
no B-frames, which WebRTC players and our server's ``keep_bframe off`` want),
looped with continuous RTP timestamps, packetized with the server's own
``H264Payloader`` (STAP-A SPS+PPS before each IDR, FU-A at 1200 bytes) and
sent as one burst per frame at the frame's time (30 fps).  Audio: one 160-byte
Opus-framed packet every 20 ms (TOC 0xFC, 20 ms CELT fullband stereo;
64 kbit/s).  Its content is not a real Opus frame: no server decodes it on the
WebRTC-to-WebRTC path (``rtc_to_rtmp off``), and it carries the stamp.

Stamps, for the latency figures: every audio packet's payload, and an SEI NAL
(user data unregistered) put in front of every video frame, carry
``bench/publisher.py``'s UUID and the send time as 16 ASCII digits of
CLOCK_MONOTONIC microseconds, taken just before the packet (for video: the
frame's burst) is protected and sent.  A player that decrypts a packet finds
the stamp and compares it with the datagram's kernel receive time.

Prints ``UP <seconds to connect>`` once DTLS is done, a JSON summary at the end.
Bounded: ``--duration`` seconds of media after connecting, ``--connect-timeout``
before.

    python bench/rtc_publish.py 'http://127.0.0.1:1985/rtc/v1/whip/?app=live&stream=bench' --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import rtc_lean  # noqa: E402
from bench import make_clip  # noqa: E402
from publisher import SEI_UUID, read_flv  # noqa: E402

from srs_twisted.codec import avc  # noqa: E402
from srs_twisted.codec.rtp_h264 import H264Payloader  # noqa: E402

_HDR = struct.Struct("!BBHII")
OPUS_TOC = 0xFC
AUDIO_SIZE = 160


def stamp() -> bytes:
    return SEI_UUID + b"%016d" % (time.monotonic_ns() // 1000 % 10**16)


def sei(stamp_bytes: bytes) -> bytes:
    """An SEI NAL unit (user data unregistered, payload 32 bytes) carrying a stamp."""
    return b"\x06\x05" + bytes([len(stamp_bytes)]) + stamp_bytes + b"\x80"


def video_frames(clip: str):
    """[(pts ms, [NAL units])] of the clip's video (sequence header applied first)."""
    payloader = H264Payloader()
    frames = []
    for kind, ts, body in read_flv(clip):
        if kind != 9 or len(body) < 5 or body[0] & 0x0F != 7:
            continue
        if body[1] == 0:
            payloader.set_config(body[5:])
            frames.append((ts, "config"))
        elif body[1] == 1:
            frames.append((ts, body[5:]))
    return payloader, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the WHIP URL")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of media, at most 3600")
    parser.add_argument("--connect-timeout", type=float, default=20.0)
    parser.add_argument("--clip", help="FLV with H.264 (no B-frames); default: make one")
    args = parser.parse_args()
    duration = min(args.duration, 3600.0)

    clip = args.clip or make_clip(baseline=True)
    payloader, frames = video_frames(clip)
    span = (frames[-1][0] - frames[0][0]) + 33  # ms per loop of the clip

    rng = random.Random()
    vssrc, assrc = rng.getrandbits(32) | 1, rng.getrandbits(32) | 1
    peer = rtc_lean.LeanPeer(rtc_lean.make_context(), publish=True, twcc=False, ssrcs=(assrc, vssrc))
    start = time.monotonic()
    if not peer.signal(args.url):
        raise SystemExit(f"rtc_publish: {peer.error}")
    poller = select.epoll()
    poller.register(peer.fd, select.EPOLLIN)
    buf = bytearray(2048)
    rtcp = {"packets": 0}

    def drain(now: float) -> None:
        for _ in range(256):
            try:
                n = peer.sock.recv_into(buf)
            except BlockingIOError:
                return
            if n and 128 <= buf[0] <= 191:
                rtcp["packets"] += 1  # RTCP from the server (PLI, NACK, RR): counted, not acted on
            elif n:
                peer.on_control(bytes(buf[:n]), now)

    while peer.state not in ("up", "failed"):
        now = time.monotonic()
        if now - start > args.connect_timeout:
            raise SystemExit("rtc_publish: not connected in time (state %s)" % peer.state)
        peer.tick(now)
        if poller.poll(0.02):
            drain(now)
    if peer.state == "failed":
        raise SystemExit(f"rtc_publish: {peer.error}")
    print("UP %.3f %s" % (time.monotonic() - start, peer.profile), flush=True)

    protect, sock, remote = peer.srtp.protect_rtp, peer.sock, peer.remote
    vseq, aseq = rng.getrandbits(16), rng.getrandbits(16)
    vbase, abase = rng.getrandbits(32), rng.getrandbits(32)
    sent = {"video_packets": 0, "video_bytes": 0, "audio_packets": 0, "audio_bytes": 0, "frames": 0,
            "send_errors": 0}
    t0 = time.monotonic() + 0.05
    end = t0 + duration
    frame_index, loop = 0, 0
    audio_index = 0
    first_pts = frames[0][0]
    pad = bytes(AUDIO_SIZE)

    def send(header: bytes, payload: bytes, kind: str) -> None:
        try:
            sock.sendto(protect(header + payload), remote)
            sent[kind + "_packets"] += 1
            sent[kind + "_bytes"] += 12 + len(payload)
        except OSError:
            sent["send_errors"] += 1

    while True:
        now = time.monotonic()
        if now >= end:
            break
        pts, nals = frames[frame_index]
        video_at = t0 + (loop * span + pts - first_pts) / 1000.0
        audio_at = t0 + audio_index * 0.02
        due = min(video_at, audio_at)
        if due > now:
            if poller.poll(min(due - now, 0.05)):
                drain(time.monotonic())
            peer.tick(time.monotonic())
            continue
        if audio_at <= video_at:
            header = _HDR.pack(0x80, rtc_lean.OPUS_PT, aseq, (abase + audio_index * 960) & 0xFFFFFFFF, assrc)
            body = bytes([OPUS_TOC]) + stamp()
            send(header, body + pad[len(body):], "audio")
            aseq = (aseq + 1) & 0xFFFF
            audio_index += 1
            continue
        frame_index += 1
        if frame_index == len(frames):
            frame_index, loop = 0, loop + 1
        if nals == "config":
            continue
        rtp_time = (vbase + (loop * span + pts - first_pts) * 90) & 0xFFFFFFFF
        mark = stamp()
        units = [sei(mark)] + [bytes(n) for n in avc.split_nalus(nals, payloader.nal_length_size)]
        payloads = payloader.payloads(units)
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            header = _HDR.pack(0x80, (0x80 if i == last else 0) | rtc_lean.H264_PT, vseq, rtp_time, vssrc)
            send(header, payload, "video")
            vseq = (vseq + 1) & 0xFFFF
        sent["frames"] += 1
    sent["rtcp_in"] = rtcp["packets"]
    sent["seconds"] = round(time.monotonic() - t0, 3)
    rtc_lean.delete(peer.location)
    print(json.dumps(sent), flush=True)


if __name__ == "__main__":
    main()
