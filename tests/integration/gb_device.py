"""A GB28181 camera for the tests: SIP over TCP or UDP, MPEG-PS over RTP over TCP (RFC 4571) or UDP.

:class:`Camera` registers with the server, answers its INVITE (100 Trying, 200 OK
with an SDP, then waits for the ACK), sends keepalive MESSAGEs, and streams a
PS file to the media address and SSRC the INVITE's SDP gives, paced in real
time by the PES timestamps (a video frame with its audio per RTP group, the
marker bit on the group's last packet).  A thread runs the SIP side and one
the media; tests drive it with :meth:`register`, :meth:`stop_media`,
:meth:`bye`, :meth:`unregister` and read what it saw in :attr:`invites`.

:func:`ps_file` makes the PS with GStreamer (``videotestsrc ! x264enc`` and
``audiotestsrc ! avenc_aac`` into ``mpegpsmux``), cached per run.
"""

from __future__ import annotations

import atexit
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

from tests.integration import harness as h

_PS: dict = {}
_DIRS: list = []


@atexit.register
def _clean() -> None:
    for path in _DIRS:
        shutil.rmtree(path, ignore_errors=True)


def ps_file(seconds: int = 24, width: int = 320, height: int = 240) -> str:
    """An H.264 + AAC program stream made by GStreamer's mpegpsmux."""
    key = (seconds, width, height)
    if key in _PS:
        return _PS[key]
    gst = h.need("gst-launch-1.0 (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-bad "
                 "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav)",
                 shutil.which("gst-launch-1.0"))
    _DIRS.append(tempfile.mkdtemp(prefix="srs-gb-"))
    out = os.path.join(_DIRS[-1], "cam.ps")
    frames = seconds * 25
    cmd = [gst, "-q", "videotestsrc", f"num-buffers={frames}", "!",
           f"video/x-raw,width={width},height={height},framerate=25/1", "!",
           "x264enc", "key-int-max=25", "tune=zerolatency", "bframes=0", "!", "h264parse", "!",
           "mpegpsmux", "name=m", "!", "filesink", f"location={out}",
           "audiotestsrc", f"num-buffers={seconds * 30}", "blocksize=5880", "!",
           "audio/x-raw,rate=44100,channels=2,format=S16LE", "!", "audioconvert", "!", "avenc_aac", "!",
           "aacparse", "!", "m."]
    result = subprocess.run(cmd, capture_output=True, timeout=300)
    if result.returncode != 0 or not os.path.getsize(out):
        raise AssertionError("gst-launch-1.0 failed: %s" % result.stderr.decode(errors="replace")[-800:])
    _PS[key] = out
    return out


def ps_file_hevc_g711(seconds: int = 14, audio: str = "pcma") -> str:
    """An H.265 + G.711 program stream: FFmpeg encodes (libx265 with access unit delimiters,
    no B-frames; pcm_alaw/pcm_mulaw 8 kHz mono) and the PS is muxed by the server's own
    :class:`~srs_twisted.codec.ps.PsMuxer` (GStreamer's mpegpsmux takes neither codec)."""
    from srs_twisted.codec.ps import PsMuxer

    key = ("hevc", seconds, audio)
    if key in _PS:
        return _PS[key]
    tmp = tempfile.mkdtemp(prefix="srs-gb-")
    _DIRS.append(tmp)
    video, sound = os.path.join(tmp, "v.hevc"), os.path.join(tmp, "a.g711")
    codec, fmt = ("pcm_alaw", "alaw") if audio == "pcma" else ("pcm_mulaw", "mulaw")
    cmd = [h.ffmpeg(), "-v", "error", "-y", "-t", str(seconds), "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
           "-t", str(seconds), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000",
           "-map", "0:v", "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", "aud=1:bframes=0:keyint=25:log-level=error", "-f", "hevc", video,
           "-map", "1:a", "-c:a", codec, "-ac", "1", "-ar", "8000", "-f", fmt, sound]
    result = subprocess.run(cmd, capture_output=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError("ffmpeg failed: %s" % result.stderr.decode(errors="replace")[-800:])
    with open(video, "rb") as f:
        es = f.read()
    with open(sound, "rb") as f:
        g711 = f.read()
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01\x46", es)]  # AUD NAL units (type 35)
    starts = [p - 1 if p and es[p - 1] == 0 else p for p in starts] + [len(es)]
    mux = PsMuxer("h265", audio)
    parts = []
    for i in range(len(starts) - 1):
        au = es[starts[i]:starts[i + 1]]
        pts = 90000 + i * 3600
        keyframe = b"\x00\x00\x01\x40" in au  # a VPS: the IRAP of each GOP
        parts.append(mux.video(au, pts, keyframe=keyframe))
        chunk = g711[i * 320:(i + 1) * 320]  # 40 ms of 8 kHz samples per video frame
        if chunk:
            parts.append(mux.audio(chunk, pts))
    out = os.path.join(tmp, "cam-hevc.ps")
    with open(out, "wb") as f:
        f.write(b"".join(parts))
    _PS[key] = out
    return out


def ps_groups(data: bytes) -> list:
    """The PS cut into (pts in seconds, bytes) groups: each starts at a video PES with a new PTS."""
    groups = []
    pos, start, last_video, group_pts = 0, 0, None, 0.0
    while pos + 4 <= len(data):
        if data[pos:pos + 3] != b"\x00\x00\x01":
            pos += 1
            continue
        sid = data[pos + 3]
        if sid == 0xBA:
            size = 14 + (data[pos + 13] & 7)
        elif sid == 0xB9:
            size = 4
        else:
            size = 6 + struct.unpack_from(">H", data, pos + 4)[0]
        if 0xE0 <= sid <= 0xEF and data[pos + 7] & 0x80:
            b = data[pos + 9:pos + 14]
            pts = ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
            if pts != last_video:
                if pos > start:
                    groups.append((group_pts, data[start:pos]))
                # the group starts at the pack header (if any) just before this PES
                start, last_video, group_pts = pos, pts, pts / 90000.0
        pos += size
    groups.append((group_pts, data[start:]))
    return groups


class Camera:
    """See the module docstring."""

    def __init__(self, server_port: int, sip: str | None = "udp", device_id: str = "34020000001320000001",
                 ps: str | None = None, keepalive: float = 2.0, answer: bool = True, loop: bool = True,
                 loss: float = 0.0, reorder: float = 0.0) -> None:
        """``loss``/``reorder``: the share of UDP media packets dropped / sent after their successor."""
        self.server = ("127.0.0.1", server_port)
        self.sip = sip
        self.id = device_id
        self.ps = ps
        self.keepalive = keepalive
        self.answer = answer
        self.loop = loop
        self.loss = loss
        self.reorder = reorder
        self.dropped = 0
        self._rng = random.Random(11)
        self.invites: list = []  # (call-id, media transport, port, ssrc) of each INVITE answered
        self.byes: list = []  # call-ids the server said BYE to
        self.acks: list = []
        self.received: list = []  # every SIP message (start line)
        self.sent_media = 0
        self.media_connect_errors = 0
        self._cseq = 1
        self._stop = threading.Event()
        self._media_stop = threading.Event()
        self._media_thread = None
        self._lock = threading.Lock()
        self._tag = "cam%d" % random.randrange(10 ** 6)
        self._call = None
        self._pending_media = None
        self._buf = b""
        self._thread = None
        if sip is None:  # media only (the external-SIP mode)
            self.sock = None
            return
        if sip == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        else:
            self.sock = socket.create_connection(self.server, timeout=10)
        self.sock.settimeout(0.2)
        self.local = self.sock.getsockname()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # --- SIP out ---

    def _send(self, text: str, body: bytes = b"") -> None:
        data = text.replace("\n", "\r\n").encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body
        with self._lock:
            if self.sip == "udp":
                self.sock.sendto(data, self.server)
            else:
                self.sock.sendall(data)

    def _request(self, method: str, extra: str = "", body: bytes = b"", call_id: str | None = None) -> None:
        self._cseq += 1
        t = "UDP" if self.sip == "udp" else "TCP"
        self._send(f"{method} sip:34020000002000000001@3402000000 SIP/2.0\n"
                   f"Via: SIP/2.0/{t} {self.local[0]}:{self.local[1]};rport;branch=z9hG4bK{random.randrange(10**9)}\n"
                   f"From: <sip:{self.id}@3402000000>;tag={self._tag}\n"
                   f"To: <sip:{self.id if method == 'REGISTER' else '34020000002000000001'}@3402000000>\n"
                   f"Call-ID: {call_id or 'reg-%s' % self.id}\nCSeq: {self._cseq} {method}\n"
                   f"Contact: <sip:{self.id}@{self.local[0]}:{self.local[1]}>\nMax-Forwards: 70\n"
                   f"User-Agent: test camera\n{extra}", body)

    def register(self, expires: int = 3600) -> None:
        self._request("REGISTER", f"Expires: {expires}\n")

    def unregister(self) -> None:
        self.stop_media()
        self.register(0)

    def send_keepalive(self) -> None:
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
                f'<SN>{self._cseq}</SN>\r\n<DeviceID>{self.id}</DeviceID>\r\n<Status>OK</Status>\r\n'
                f'</Notify>\r\n').encode()
        self._request("MESSAGE", "Content-Type: Application/MANSCDP+xml\n", body, call_id=f"ka-{self._cseq}")

    def bye(self) -> None:
        """The camera hangs up its call (and stops its media)."""
        self.stop_media()
        if self._call is not None:
            call_id, from_h, to_h = self._call
            self._cseq += 1
            t = "UDP" if self.sip == "udp" else "TCP"
            self._send(f"BYE sip:34020000002000000001@3402000000 SIP/2.0\n"
                       f"Via: SIP/2.0/{t} {self.local[0]}:{self.local[1]};branch=z9hG4bKb{random.randrange(10**9)}\n"
                       f"From: {to_h}\nTo: {from_h}\nCall-ID: {call_id}\nCSeq: {self._cseq} BYE\n")

    # --- SIP in ---

    def _run(self) -> None:
        next_keepalive = time.monotonic() + self.keepalive
        while not self._stop.is_set():
            if self.keepalive and time.monotonic() >= next_keepalive:
                next_keepalive = time.monotonic() + self.keepalive
                try:
                    self.send_keepalive()
                except OSError:
                    pass
            try:
                data = self.sock.recv(65536) if self.sip == "udp" else self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data and self.sip != "udp":
                return
            for msg in self._messages(data):
                self._handle(msg)

    def _messages(self, data: bytes) -> list:
        if self.sip == "udp":
            return [data]
        self._buf += data
        out = []
        while b"\r\n\r\n" in self._buf:
            head, _, rest = self._buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            n = int(m.group(1)) if m else 0
            if len(rest) < n:
                break
            out.append(head + b"\r\n\r\n" + rest[:n])
            self._buf = rest[n:]
        return out

    def _handle(self, data: bytes) -> None:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.received.append(lines[0])
        hdr = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdr.setdefault(name.strip().lower(), value.strip())
        if lines[0].startswith("INVITE "):
            self._invite(hdr, body, lines)
        elif lines[0].startswith("ACK "):
            self.acks.append(hdr.get("call-id"))
            if self.ps and self._pending_media is not None and hdr.get("call-id") == self._pending_media[0]:
                self.start_media(*self._pending_media[1:])
                self._pending_media = None
        elif lines[0].startswith("MESSAGE ") and b"<CmdType>DeviceInfo</CmdType>" in body:
            self._respond(lines, hdr, 200)
            sn = re.search(rb"<SN>(\d+)</SN>", body)
            answer = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n'
                      f'<SN>{int(sn.group(1)) if sn else 0}</SN>\r\n<DeviceID>{self.id}</DeviceID>\r\n'
                      f'<Result>OK</Result>\r\n<Manufacturer>TestCam</Manufacturer>\r\n<Model>PS-1</Model>\r\n'
                      f'<Firmware>1.0</Firmware>\r\n</Response>\r\n').encode()
            self._request("MESSAGE", "Content-Type: Application/MANSCDP+xml\n", answer, call_id=f"di-{self._cseq}")
        elif lines[0].startswith("BYE "):
            self.byes.append(hdr.get("call-id"))
            self._respond(lines, hdr, 200)
            self.stop_media()

    def _respond(self, lines, hdr, status: int, extra: str = "", body: bytes = b"", tag: bool = True) -> None:
        reason = {100: "Trying", 200: "OK"}[status]
        vias = "".join(f"{line}\n" for line in lines[1:] if line.lower().startswith("via:"))
        to = hdr["to"] + (";tag=" + self._tag if tag and "tag=" not in hdr["to"] else "")
        self._send(f"SIP/2.0 {status} {reason}\n{vias}From: {hdr['from']}\nTo: {to}\nCall-ID: {hdr['call-id']}\n"
                   f"CSeq: {hdr['cseq']}\n{extra}", body)

    def _invite(self, hdr, body: bytes, lines) -> None:
        sdp = body.decode(errors="replace")
        port = int(re.search(r"m=video (\d+) (\S+)", sdp).group(1))
        transport = "tcp" if "TCP/RTP/AVP" in sdp else "udp"
        ssrc = int(re.search(r"y=(\d+)", sdp).group(1))
        self.invites.append((hdr["call-id"], transport, port, ssrc))
        if not self.answer:
            return
        self._respond(lines, hdr, 100, tag=False)
        answer = (f"v=0\r\no={self.id} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                  f"m=video 15060 {'TCP/RTP/AVP' if transport == 'tcp' else 'RTP/AVP'} 96\r\na=sendonly\r\n"
                  f"a=rtpmap:96 PS/90000\r\ny={ssrc:010d}\r\n").encode()
        self._call = (hdr["call-id"], hdr["from"], hdr["to"] + ";tag=" + self._tag)
        self._respond(lines, hdr, 200, f"Contact: <sip:{self.id}@{self.local[0]}:{self.local[1]}>\n"
                                       "Content-Type: application/sdp\n", answer)
        self._pending_media = (hdr["call-id"], transport, port, ssrc)  # sent once the ACK comes

    # --- media ---

    def start_media(self, transport: str, port: int, ssrc: int) -> None:
        self.stop_media()
        self._media_stop = threading.Event()
        self._media_thread = threading.Thread(target=self._media, args=(transport, port, ssrc, self._media_stop),
                                              daemon=True)
        self._media_thread.start()

    def stop_media(self) -> None:
        self._media_stop.set()
        thread = self._media_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        self._media_thread = None

    def _media(self, transport: str, port: int, ssrc: int, stop: threading.Event) -> None:
        with open(self.ps, "rb") as f:
            groups = ps_groups(f.read())
        try:
            if transport == "tcp":
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError:
            self.media_connect_errors += 1
            return
        seq = random.randrange(65536)
        held = None
        base = time.monotonic()
        offset = 0.0
        try:
            while not stop.is_set():
                first = groups[0][0]
                for pts, chunk in groups:
                    if stop.is_set():
                        break
                    due = base + offset + pts - first
                    delay = due - time.monotonic()
                    if delay > 0:
                        stop.wait(delay)
                    stamp = int((offset + pts - first) * 90000) & 0xFFFFFFFF
                    pieces = [chunk[i:i + 1400] for i in range(0, len(chunk), 1400)]
                    for i, piece in enumerate(pieces):
                        marker = 0x80 if i == len(pieces) - 1 else 0
                        rtp = struct.pack(">BBHII", 0x80, marker | 96, seq, stamp, ssrc) + piece
                        seq = (seq + 1) & 0xFFFF
                        if transport == "tcp":
                            sock.sendall(struct.pack(">H", len(rtp)) + rtp)
                        elif self.loss and self._rng.random() < self.loss:
                            self.dropped += 1
                        elif held is None and self.reorder and self._rng.random() < self.reorder:
                            held = rtp  # goes out after the next one
                        else:
                            sock.sendto(rtp, ("127.0.0.1", port))
                            if held is not None:
                                sock.sendto(held, ("127.0.0.1", port))
                                held = None
                        self.sent_media += len(rtp)
                if not self.loop:
                    break
                offset += groups[-1][0] - first + 0.04
        except OSError:
            pass
        finally:
            sock.close()

    def close(self) -> None:
        self.stop_media()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.sock is not None:
            self.sock.close()
