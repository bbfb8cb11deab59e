"""Make the seed corpora in fuzz/corpus/ from real traffic.

    PYTHONPATH=. .venv/bin/python -m fuzz.make_seeds [GROUP...]

Sources: FFmpeg-encoded clips (FLV, MPEG-TS; H.264, H.265, AAC, MP3), the
bytes FFmpeg sends when it publishes to and plays from the real server
(RTMP through a recording proxy; HTTP requests captured on a socket),
OpenSSL's DTLS flights (pyOpenSSL), aioice's STUN checks, aiortc's RTP and
RTCP, the WebRTC offers captured in tests/codec/sdp_fixtures.py, the
repository's conf/ files, an SRT caller's handshake with the listener.
Seeds are trimmed to each target's max_len; the files are committed so
that the CI pass is reproducible without these tools.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from fuzz.base import CORPUS, datagram_input, stream_input
from fuzz.targets import load

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def save(name: str, seeds) -> int:
    target = load()[name]
    out = os.path.join(CORPUS, name)
    os.makedirs(out, exist_ok=True)
    count = 0
    for seed in seeds:
        seed = bytes(seed)[: target.max_len]
        digest = hashlib.sha1(seed).hexdigest()[:16]
        with open(os.path.join(out, digest), "wb") as f:
            f.write(seed)
        count += 1
    return count


# --- media from FFmpeg ---------------------------------------------------------------------------

def encode(fmt: str, vcodec: str, acodec: str, seconds: float = 1.0) -> bytes:
    path = tempfile.mktemp(suffix="." + fmt)
    v = {"h264": ["-c:v", "libx264", "-profile:v", "high", "-bf", "2"],
         "hevc": ["-c:v", "libx265", "-x265-params", "log-level=error"]}[vcodec]
    a = {"aac": ["-c:a", "aac", "-b:a", "32k"], "mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-ar", "44100"]}[acodec]
    extra = ["-strict", "-2"] if fmt == "flv" and vcodec == "hevc" else []
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=10:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
                    *v, "-g", "5", "-pix_fmt", "yuv420p", "-preset", "ultrafast", *a, "-ac", "1",
                    *extra, "-f", "flv" if fmt == "flv" else "mpegts", path], check=True, timeout=120)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def flv_tags_of(data: bytes):
    from srs_twisted.codec.flv import FlvReader

    return FlvReader().feed(data)


def media_seeds() -> None:
    kinds = [("h264", "aac"), ("h264", "mp3"), ("hevc", "aac")]
    flvs = []
    for v, a in kinds[:2]:  # this FFmpeg writes no HEVC in FLV
        try:
            flvs.append(encode("flv", v, a))
        except subprocess.CalledProcessError as e:
            print(f"no FLV {v}/{a}: {e}", file=sys.stderr)
    save("flv_reader", [stream_input(d, split) for d in flvs for split in (7, 3)])
    tags, scripts = [], []
    for data in flvs:
        seen = set()
        for tag in flv_tags_of(data):
            kind = {9: 0, 8: 1, 18: 2}[tag.tag_type]
            key = (tag.tag_type, tag.payload[:2])
            if key in seen and len(seen) > 12:
                continue
            seen.add(key)
            tags.append(bytes([kind]) + tag.payload[:2000])
            if tag.tag_type == 18:
                scripts.append(tag.payload)
    save("flv_tags", tags)
    save("amf0", scripts)
    ts = []
    for v, a in kinds:
        data = encode("ts", v, a)
        ts += [stream_input(data[: 188 * 300], 7), stream_input(data[: 188 * 60], 4)]
    save("mpegts", ts)
    return ts


# --- RTMP: FFmpeg through a recording proxy to the real server -------------------------------------

class RecordingProxy(threading.Thread):
    """Accepts connections, forwards them to ``upstream``; keeps what clients sent."""

    def __init__(self, upstream: int):
        super().__init__(daemon=True)
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.sent: list[bytearray] = []
        self.received: list[bytearray] = []  # what the server sent back, per connection

    def run(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            record, back = bytearray(), bytearray()
            self.sent.append(record)
            self.received.append(back)
            threading.Thread(target=self._pump, args=(client, server, record), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, back), daemon=True).start()

    @staticmethod
    def _pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None and len(record) < 1 << 20:
                    record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def rtmp_seeds() -> None:
    sys.path.insert(0, ROOT)
    from tests.integration import harness as h

    server = h.Server(
        "vhost __defaultVhost__ { hls { enabled on; hls_path ./html; hls_fragment 1; } "
        "dash { enabled on; dash_path ./html; dash_fragment 1; } dvr { enabled on; dvr_path ./rec/[stream].mp4; } }"
        "vhost flv.test { dvr { enabled on; dvr_path ./rec/[stream].flv; } }")
    try:
        proxy = RecordingProxy(server.port)
        proxy.start()
        url = f"rtmp://127.0.0.1:{proxy.port}/live/seed"
        clip = os.path.join(tempfile.mkdtemp(), "c.flv")
        with open(clip, "wb") as f:
            f.write(encode("flv", "h264", "aac", 2.0))
        play = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", url, "-t", "1",
                                 "-f", "null", "-"])
        time.sleep(1.0)
        flv_pub = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", clip, "-c", "copy",
                                    "-f", "flv", server.url("seedflv") + "?vhost=flv.test"])
        pub = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", clip, "-c", "copy",
                                "-f", "flv", url])
        leftovers = []
        for _ in range(3):  # DVR files as a kill would leave them: cut mid-write
            time.sleep(0.6)
            for name in ("seed.mp4.tmp", "seedflv.flv.tmp"):
                try:
                    with open(os.path.join(server.dir, "rec", name), "rb") as f:
                        leftovers.append(bytes([name.endswith("mp4.tmp")]) + f.read()[:65535])
                except OSError:
                    pass
        pub.wait(timeout=60)
        flv_pub.wait(timeout=60)
        html = os.path.join(server.dir, "html", "live")
        playlists = [open(os.path.join(html, n), "rb").read() for n in os.listdir(html) if n.endswith(".m3u8")]
        mpds = [open(os.path.join(html, n), "rb").read() for n in os.listdir(html) if n.endswith(".mpd")]
        save("dvr_repair", leftovers)
        save("hls_playlist", playlists + [p[: len(p) // 2] for p in playlists])
        save("dash_mpd", mpds)
        try:
            play.wait(timeout=10)
        except subprocess.TimeoutExpired:
            play.kill()
            play.wait()
        proxy.sock.close()
        time.sleep(0.5)
        streams = [bytes(r) for r in proxy.sent if r]
        replies = [bytes(r) for r in proxy.received if r]
    finally:
        server.stop(check=False)
    # byte 0 odd: our client plays (what the server sent a player), even: it publishes
    save("rtmp_client", [bytes([mode]) + r[:16000] for r in replies for mode in (7, 6, 1, 0)])
    handshakes = [s[:1537 + 1536] for s in streams]
    save("rtmp_handshake", [stream_input(s, 7) for s in handshakes] + [stream_input(s, 6) for s in handshakes])
    save("rtmp_session", [stream_input(s[:16000], split) for s in streams for split in (7, 5)])
    chunks = [s[1537 + 1536:] for s in streams]
    save("rtmp_chunk", [stream_input(c[:16000], split) for c in chunks for split in (7, 2)])
    # The AMF0 of every command the clients sent.
    from srs_twisted.rtmp.chunk import ChunkReader

    amf = []
    for c in chunks:
        try:
            for msg in ChunkReader().feed(c[:200000]):
                if msg.type_id in (18, 20):
                    amf.append(msg.payload)
        except Exception as e:  # noqa: BLE001 - seeds are best effort
            print(f"chunk capture cut short: {e}", file=sys.stderr)
    save("amf0", amf)


# --- HTTP: what FFmpeg and curl send -------------------------------------------------------------

def capture_request(argv_for) -> bytes:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.settimeout(20)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(argv_for(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = b""
    try:
        conn, _ = sock.accept()
        conn.settimeout(2)
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            conn.close()
    finally:
        sock.close()
        proc.kill()
        proc.wait()
    return data


def http_seeds() -> None:
    requests = [
        capture_request(lambda p: [FFMPEG, "-loglevel", "quiet", "-i", f"http://127.0.0.1:{p}/live/s.flv", "-t", "1",
                                   "-f", "null", "-"]),
        capture_request(lambda p: [FFMPEG, "-loglevel", "quiet", "-i", f"http://127.0.0.1:{p}/live/s.m3u8", "-t", "1",
                                   "-f", "null", "-"]),
    ]
    if shutil.which("curl"):
        requests.append(capture_request(lambda p: ["curl", "-s", "-m", "3", f"http://127.0.0.1:{p}/api/v1/streams/"]))
        requests.append(capture_request(lambda p: ["curl", "-s", "-m", "3", "-X", "POST", "-d",
                                                   '{"streamurl":"webrtc://h/live/s","sdp":"v=0"}',
                                                   f"http://127.0.0.1:{p}/rtc/v1/play/"]))
    requests += [
        b"GET /api/v1/clients/?start=0&count=10&callback=cb HTTP/1.1\r\nHost: h\r\n\r\n",
        b"OPTIONS /rtc/v1/whip/ HTTP/1.1\r\nHost: h\r\nOrigin: http://x\r\n\r\n",
        b"GET /live/s.m3u8?hls_ctx=abc HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"
        b"GET /live/s-1.ts HTTP/1.1\r\nHost: h\r\nRange: bytes=0-99\r\n\r\n",
        b"GET /live/s.flv HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        b"DELETE /api/v1/clients/abc HTTP/1.1\r\nHost: h\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\r\n",
        b"POST /api/v1/raw?rpc=reload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ]
    save("http", [stream_input(r, 7) for r in requests if r] + [stream_input(r, 1) for r in requests[:2] if r])


def text_seeds() -> None:
    sys.path.insert(0, ROOT)
    from tests.codec import sdp_fixtures as fx

    offers = [getattr(fx, n) for n in dir(fx) if n.isupper() and isinstance(getattr(fx, n), str)]
    save("sdp", [o.encode() for o in offers])
    import json

    bodies = [bytes([0]) + json.dumps({"api": "http://h:1985/rtc/v1/publish/", "streamurl": "webrtc://h/live/s",
                                        "clientip": None, "sdp": o}).encode() for o in offers]
    bodies += [bytes([2]) + o.encode() for o in offers] + [bytes([1]) + b'{"streamurl":"webrtc://h/live/s"}']
    save("api_bodies", bodies)
    confs = []
    for name in sorted(os.listdir(os.path.join(ROOT, "conf"))):
        with open(os.path.join(ROOT, "conf", name), "rb") as f:
            text = f.read()
        if b"include" not in text:
            confs.append(text)
    save("config", confs)
    replies = [b'{"code":0}', b"0", b'{"code":0,"data":{"urls":["rtmp://127.0.0.1/live/s"]}}',
               b'\xef\xbb\xbf{"code": 0, "code": 1}', b'{"code":"0"}', b'[1,2]']
    save("hook_reply", [b"\x01\x00" + r for r in replies] + [b"\x00\x64" + replies[0]])


# --- WebRTC: OpenSSL, aioice, aiortc --------------------------------------------------------------

def rtc_seeds() -> None:
    from srs_twisted.rtc.cert import Certificate, certificate_fingerprint
    from srs_twisted.rtc.dtls import DtlsContext

    # A whole handshake between two OpenSSL endpoints: what the client sent, per datagram.
    server_ctx, client_ctx = DtlsContext(Certificate.generate()), DtlsContext(Certificate.generate())
    client = client_ctx.endpoint(True, certificate_fingerprint(server_ctx.certificate.cert))
    server = server_ctx.endpoint(False, certificate_fingerprint(client_ctx.certificate.cert))
    client.start(0.0)
    from_client = []
    for step in range(10):
        out = client.data_to_send()
        from_client += out
        for d in out:
            server.receive_data(d, step)
        for d in server.data_to_send():
            client.receive_data(d, step)
    save("dtls", [datagram_input(from_client[:1]), datagram_input(from_client)])
    tcp = b"".join(len(d).to_bytes(2, "big") + d for d in from_client)
    save("rtc_tcp_framing", [stream_input(tcp, 7), stream_input(tcp, 2)])

    from aioice import stun as astun

    checks = []
    for use in (False, True):
        msg = astun.Message(astun.Method.BINDING, astun.Class.REQUEST)
        msg.attributes["USERNAME"] = "srsufrag:peerufrag"
        msg.attributes["PRIORITY"] = 1853824767
        msg.attributes["ICE-CONTROLLING"] = 0x1234567890ABCDEF
        if use:
            msg.attributes["USE-CANDIDATE"] = None
        msg.add_message_integrity(b"0123456789abcdef0123456789abcdef")
        msg.add_fingerprint()
        checks.append(bytes(msg))
    resp = astun.Message(astun.Method.BINDING, astun.Class.RESPONSE)
    resp.attributes["XOR-MAPPED-ADDRESS"] = ("10.0.0.1", 5000)
    resp.attributes["ERROR-CODE"] = (487, "Role Conflict")
    checks.append(bytes(resp))
    save("stun", checks)

    from aiortc.codecs.h264 import H264Encoder
    from aiortc.codecs.opus import OpusEncoder
    from aiortc import rtp as artp
    import av
    import fractions

    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    ext_map = artp.HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(
        id=3, uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01")]))
    enc = H264Encoder()
    packets = []
    seq = 100
    for i in range(3):
        frame = av.VideoFrame(width=64, height=48, format="yuv420p")
        for plane in frame.planes:
            plane.update(bytes([i * 40]) * plane.buffer_size)
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        payloads, ts = enc.encode(frame, force_keyframe=i == 0)
        for j, payload in enumerate(payloads):
            pkt = artp.RtpPacket(payload_type=102, marker=j == len(payloads) - 1, sequence_number=seq,
                                 timestamp=ts, ssrc=1111)
            pkt.extensions.transport_sequence_number = seq
            pkt.payload = payload
            packets.append(pkt.serialize(ext_map))
            seq += 1
    oenc = OpusEncoder()
    aframe = av.AudioFrame(format="s16", layout="stereo", samples=960)
    for plane in aframe.planes:
        plane.update(bytes(plane.buffer_size))
    aframe.sample_rate, aframe.pts, aframe.time_base = 48000, 0, fractions.Fraction(1, 48000)
    apayloads, ats = oenc.encode(aframe)
    for k, payload in enumerate(apayloads):
        packets.append(artp.RtpPacket(payload_type=111, sequence_number=k, timestamp=ats, ssrc=2222,
                                      payload=payload).serialize(ext_map))
    save("rtp", [datagram_input(packets), datagram_input(packets[:3])])
    sr = artp.RtcpSrPacket(ssrc=1111, sender_info=artp.RtcpSenderInfo(ntp_timestamp=1 << 40, rtp_timestamp=9000,
                                                                     packet_count=10, octet_count=1000))
    sr.reports.append(artp.RtcpReceiverInfo(ssrc=2222, fraction_lost=1, packets_lost=2, highest_sequence=300,
                                            jitter=5, lsr=7, dlsr=8))
    rr = artp.RtcpRrPacket(ssrc=1, reports=[artp.RtcpReceiverInfo(ssrc=2222, fraction_lost=0, packets_lost=0,
                                                                  highest_sequence=1, jitter=0, lsr=0, dlsr=0)])
    sdes = artp.RtcpSdesPacket(chunks=[artp.RtcpSourceInfo(ssrc=1111, items=[(1, b"cname-x")])])
    bye = artp.RtcpByePacket(sources=[1111])
    nack = artp.RtcpRtpfbPacket(fmt=artp.RTCP_RTPFB_NACK, ssrc=1, media_ssrc=1111, lost=[5, 6, 9, 40])
    pli = artp.RtcpPsfbPacket(fmt=artp.RTCP_PSFB_PLI, ssrc=1, media_ssrc=1111)
    remb = artp.RtcpPsfbPacket(fmt=artp.RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=artp.pack_remb_fci(300000, [1111]))
    from srs_twisted.codec.rtcp import build_transport_cc, serialize_compound as rtcp_serialize

    twcc = build_transport_cc(1, 1111, [(1, 1000), (2, 2000), (4, 9000)])
    save("rtcp", [bytes(sr) + bytes(sdes), bytes(rr), bytes(bye), bytes(nack), bytes(pli), bytes(remb),
                  rtcp_serialize(twcc)])


# --- SRT: a caller's handshake with the fuzzed listener, then MPEG-TS ----------------------------------

def srt_seeds(ts: list) -> None:
    from fuzz.targets.srt import PEER, SECRET, START_US, deterministic_rand
    from srs_twisted.srt.crypto import caller_kmreq
    from srs_twisted.srt.handshake import ListenerSettings, SrtCaller, SrtListener

    seeds, packets_all = [], []
    for sid in ("#!::r=live/livestream,m=publish", "live/livestream?m=request", "#!::h=v,r=a/b,m=bogus"):
        listener = SrtListener(ListenerSettings(), secret=SECRET, rand=deterministic_rand())
        caller = SrtCaller(sid, host=PEER[0])
        now = START_US
        caller.start(now)
        sent = []
        for _ in range(4):
            for d in caller.datagrams_to_send():
                sent.append(d)
                result = listener.handshake(d, PEER, now)
                reply = result if isinstance(result, bytes) else getattr(result, "response", None)
                if reply:
                    caller.datagram_received(reply, now)
            now += 10_000
        conn = caller.connection
        if conn is not None and ts:
            payload = ts[0][1:][: 188 * 40]
            for i in range(0, len(payload), 1316):
                conn.send(payload[i:i + 1316], now)
            sent += conn.datagrams_to_send()
        packets_all += sent
        seeds.append(datagram_input(sent))
    save("srt_port", seeds)
    save("srt_packet", packets_all[:40])
    save("srt_km", [caller_kmreq("fuzz-passphrase", n)[0] for n in (16, 24, 32)])


def amf3_seeds() -> None:
    from srs_twisted.codec import amf3

    values = [1, -5, 2 ** 28, 1.5, "text", "", True, None, [1, "a", [2]], {"a": 1, "b": [1, 2], "c": {"d": "e"}},
              b"\x00\x01bytes"]
    save("amf3", [amf3.encode(v) for v in values])


SIP_DEVICE = "34020000001320000001"
SIP_SERVER = "34020000002000000001"


def sip_messages() -> list[bytes]:
    """What a GB28181 camera sends, as the standard's examples lay it out (no
    device was at hand to capture): REGISTER, a keepalive MESSAGE, the 200 OK
    to our INVITE with its SDP (y= SSRC), a Catalog answer, BYE."""
    via = "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK{b}"
    head = (f"From: <sip:{SIP_DEVICE}@3402000000>;tag=dev1\r\nTo: <sip:{SIP_DEVICE}@3402000000>{{to}}\r\n"
            "Call-ID: {c}\r\nCSeq: {n} {m}\r\nMax-Forwards: 70\r\nUser-Agent: IP Camera\r\n")

    def msg(start, m, n, c, b, to="", extra="", body=b""):
        text = (start + "\r\nVia: " + via.format(b=b) + "\r\n" + head.format(to=to, c=c, n=n, m=m) + extra
                + f"Content-Length: {len(body)}\r\n\r\n")
        return text.encode() + body

    keepalive = (b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
                 b"<SN>43</SN>\r\n<DeviceID>" + SIP_DEVICE.encode() + b"</DeviceID>\r\n<Status>OK</Status>\r\n"
                 b"</Notify>\r\n")
    catalog = (b'<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n'
               b"<SN>1</SN>\r\n<DeviceID>" + SIP_DEVICE.encode() + b"</DeviceID>\r\n<SumNum>1</SumNum>\r\n"
               b'<DeviceList Num="1">\r\n<Item>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n'
               b"<Name>Camera 1</Name>\r\n<Manufacturer>Hikvision</Manufacturer>\r\n<Status>ON</Status>\r\n"
               b"</Item>\r\n</DeviceList>\r\n</Response>\r\n")
    answer = (b"v=0\r\no=34020000001320000001 0 0 IN IP4 10.0.0.5\r\ns=Play\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
              b"m=video 15060 TCP/RTP/AVP 96\r\na=setup:active\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n"
              b"y=0200000001\r\nf=\r\n")
    uri = f"sip:{SIP_SERVER}@3402000000"
    return [
        msg(f"REGISTER {uri} SIP/2.0", "REGISTER", 1, "reg1", "reg1",
            extra=f"Contact: <sip:{SIP_DEVICE}@10.0.0.5:5060>\r\nExpires: 3600\r\n"),
        msg(f"MESSAGE {uri} SIP/2.0", "MESSAGE", 20, "ka1", "ka1",
            extra="Content-Type: Application/MANSCDP+xml\r\n", body=keepalive),
        msg("SIP/2.0 200 OK", "INVITE", 1, "inv1", "inv1", to=";tag=cam9",
            extra=f"Contact: <sip:{SIP_DEVICE}@10.0.0.5:5060>\r\nContent-Type: APPLICATION/SDP\r\n", body=answer),
        msg(f"MESSAGE {uri} SIP/2.0", "MESSAGE", 21, "cat1", "cat1",
            extra="Content-Type: Application/MANSCDP+xml\r\n", body=catalog),
        msg(f"BYE {uri} SIP/2.0", "BYE", 2, "inv1", "bye1", to=";tag=cam9"),
    ]


def gb_seeds() -> None:
    messages = sip_messages()
    save("sip", [b"\x00" + m for m in messages] + [b"\x07" + b"".join(messages), b"\x01" + b"".join(messages)])
    # Program streams: FFmpeg's MPEG-PS muxer (H.264 + MP2), and ours (H.264 + AAC) from an FFmpeg TS clip.
    path = tempfile.mktemp(suffix=".ps")
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-c:a", "mp2", "-ac", "1", "-f", "mpeg", path],
                   check=True, timeout=120)
    with open(path, "rb") as f:
        ffmpeg_ps = f.read()
    os.unlink(path)
    from srs_twisted.codec.mpegts_demux import TsDemuxer
    from srs_twisted.codec.ps import PsMuxer
    from srs_twisted.codec.avc import parse_decoder_config, split_nalus

    muxer = PsMuxer()
    ours = bytearray()
    sets = []
    for pkt in TsDemuxer().feed(encode("ts", "h264", "aac")):
        if pkt.sequence_header:
            if pkt.codec == "h264":
                info = parse_decoder_config(pkt.payload[5:])
                sets = list(info.sps) + list(info.pps)
            continue
        if pkt.codec == "h264":
            nalus = (sets if pkt.keyframe else []) + split_nalus(pkt.payload[5:])
            annexb = b"".join(b"\x00\x00\x00\x01" + bytes(n) for n in nalus)
            ours += muxer.video(annexb, pkt.dts * 90, keyframe=pkt.keyframe)
        if len(ours) > 30000:
            break
    save("ps", [stream_input(ffmpeg_ps[:60000], 7), stream_input(ffmpeg_ps[:20000], 4), stream_input(bytes(ours), 7)])
    from srs_twisted.codec.rtp import packetize

    frames = []
    for data in (ffmpeg_ps[:40000], bytes(ours)):
        chunks = [data[i:i + 1400] for i in range(0, len(data), 1400)]
        packets = packetize(chunks, 96, 0x0200000001, 1, 90000)
        raw = [p.header_bytes() + bytes(p.payload) for p in packets]
        frames.append(b"".join(len(r).to_bytes(2, "big") + r for r in raw))
    save("gb_media", [stream_input(f[:65000], 7) for f in frames])


def main(argv) -> None:
    """``make_seeds [GROUP...]``: every group by default (media, amf3, text, http, rtc, srt, gb, rtmp)."""
    load()
    groups = argv or ["media", "amf3", "text", "http", "rtc", "srt", "gb", "rtmp"]
    ts = media_seeds() if "media" in groups or "srt" in groups else []
    for name, make in (("amf3", amf3_seeds), ("text", text_seeds), ("http", http_seeds), ("rtc", rtc_seeds),
                       ("srt", lambda: srt_seeds(ts)), ("gb", gb_seeds), ("rtmp", rtmp_seeds)):
        if name in groups:
            make()
    for name in sorted(os.listdir(CORPUS)):
        print(name, len(os.listdir(os.path.join(CORPUS, name))))


if __name__ == "__main__":
    main(sys.argv[1:])
