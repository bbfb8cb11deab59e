"""SRT with real libsrt peers (FFmpeg, ffprobe, srt-live-transmit) inside the tests' private
network namespace (tests/integration/netns.py): publish MPEG-TS over SRT and play it over
RTMP and HTTP-FLV; publish over RTMP and play over SRT; refusals and hooks' client types.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

from twisted.trial import unittest

from tests.integration import harness as h
from tests.integration import netns


def srt_live_transmit() -> str:
    return h.need("srt-live-transmit (apt-get install srt-tools)", shutil.which("srt-live-transmit"))


def srt_url(port: int, stream_id: str, **opts) -> str:
    query = "".join(f"&{k}={v}" for k, v in opts.items())
    return f"srt://127.0.0.1:{port}?streamid={stream_id}{query}"


def srt_live_transmit_play(url: str, out: str, seconds: int = 8) -> None:
    """srt-live-transmit plays ``url`` into the file ``out`` for ``seconds``."""
    with open(out, "wb") as f:
        proc = subprocess.Popen(["timeout", str(seconds), srt_live_transmit(), "-q", url, "file://con"], stdout=f,
                                stderr=subprocess.PIPE)
        proc.wait(seconds + 60)
        proc.stderr.close()


def srt_publish(url: str, path: str) -> subprocess.Popen:
    """FFmpeg (libsrt) publishing a clip as MPEG-TS over SRT, looped, in real time."""
    cmd = [h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", path, "-c", "copy",
           "-pes_payload_size", "0", "-f", "mpegts", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class SrtCase(unittest.TestCase):
    vhost = "srt { enabled on; } http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }"
    server_extra = ""

    def setUp(self):
        netns.enter()
        h.ffmpeg(), h.ffprobe()
        self.srt = h.free_port()
        self.http = h.free_port()
        conf = (f"srt_server {{ enabled on; listen 127.0.0.1:{self.srt}; {self.server_extra} }}\n"
                f"http_server {{ enabled on; listen 127.0.0.1:{self.http}; }}\n"
                f"vhost __defaultVhost__ {{ {self.vhost} }}\n")
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        self.procs = []
        self.addCleanup(self._stop_procs)
        self.server.wait_log(r"SRT listen at udp://127\.0\.0\.1:%d" % self.srt)

    def _stop_procs(self):
        for proc in self.procs:
            h.stop_process(proc)


class SrtPublish(SrtCase):
    def test_ffmpeg_publishes_plays_over_rtmp_and_flv(self):
        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/srtin,m=publish"), clip))
        info = h.probe(self.server.url("srtin"))
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        flv = f"http://127.0.0.1:{self.http}/live/srtin.flv"
        h.wait_http_stream(flv, 20000)
        info = h.probe(flv)
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.server.wait_log(r"SRT publish __defaultVhost__/live/srtin from 127\.0\.0\.1")

    def test_recording_over_rtmp_decodes(self):
        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(self.srt, "live/rec?m=publish"), clip))
        h.probe(self.server.url("rec"))
        out = os.path.join(tempfile.mkdtemp(prefix="srs-srt-"), "rec.flv")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        result = h.record(self.server.url("rec"), 4, out)
        self.assertEqual(result.returncode, 0, result.stderr[-500:])
        dec = subprocess.run([h.ffmpeg(), "-v", "error", "-i", out, "-f", "null", "-"], capture_output=True,
                             timeout=120)
        self.assertEqual(dec.returncode, 0)
        self.assertEqual(dec.stderr.decode(errors="replace").strip(), "")
        info = h.probe(out)
        self.assertGreater(float(info["format"]["duration"]), 3.0)

    def test_second_publisher_is_refused(self):
        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/busy,m=publish"), clip))
        h.probe(self.server.url("busy"))
        second = srt_publish(srt_url(self.srt, "#!::r=live/busy,m=publish"), clip)
        self.procs.append(second)
        self.server.wait_log(r"publish denied|stream busy")
        second.wait(60)  # FFmpeg ends: the server shut the connection
        h.probe(self.server.url("busy"))  # the first one still plays


class SrtPlay(SrtCase):
    def test_rtmp_publish_plays_over_srt(self):
        clip = h.clip("h264-aac")
        self.procs.append(h.publish(self.server.url("rt"), clip, loop=True))
        h.probe(self.server.url("rt"))
        info = h.probe(srt_url(self.srt, "#!::r=live/rt,m=request"))
        self.assertEqual(info["format"]["format_name"], "mpegts")
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual(streams["video"]["width"], 320)

    def test_srt_live_transmit_plays_srt_publish(self):
        srt_live_transmit()
        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/loop,m=publish"), clip))
        h.probe(self.server.url("loop"))
        out = os.path.join(tempfile.mkdtemp(prefix="srs-srt-"), "play.ts")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        srt_live_transmit_play(srt_url(self.srt, "#!::r=live/loop,m=request"), out)
        self.assertGreater(h.file_size(out), 50_000)
        self.assertEqual(h.file_size(out) % 188, 0)
        info = h.probe(out)
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])


class SrtRefusals(SrtCase):
    vhost = "srt { enabled on; }"

    def test_bad_stream_ids_are_refused_and_server_stays_up(self):
        for sid in ("#!::m=publish", "#!::r=live/x,m=push"):
            proc = subprocess.run(
                [h.ffprobe(), "-v", "error", "-rw_timeout", "10000000", srt_url(self.srt, sid)],
                capture_output=True, timeout=60)
            self.assertNotEqual(proc.returncode, 0)
        self.server.wait_log(r"invalid streamid")
        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/ok,m=publish"), clip))
        h.assert_streams(h.probe(self.server.url("ok")), [("video", "h264"), ("audio", "aac")])


class SrtDisabledVhost(SrtCase):
    vhost = ""

    def test_vhost_without_srt_refuses(self):
        proc = subprocess.run([h.ffprobe(), "-v", "error", "-rw_timeout", "10000000",
                               srt_url(self.srt, "#!::r=live/x,m=request")], capture_output=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.server.wait_log(r"srt disabled, vhost=__defaultVhost__")



class SrtHooksAndApi(unittest.TestCase):
    """Hooks and the HTTP API for SRT clients; a hook receiver in this test process (the
    waits run the trial reactor, which serves it)."""

    timeout = 180
    ACTIONS = ("on_connect", "on_publish", "on_unpublish", "on_close")

    def setUp(self):
        from tests.policy.receiver import start_receiver

        netns.enter()
        h.ffmpeg()
        self.receiver, base = start_receiver(self)
        hooks = "".join(f"{a} {base}/api/v1/hooks/{a}; " for a in self.ACTIONS)
        self.api = h.free_port()
        self.srt = h.free_port()
        self.server = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; }}\n"
            f"srt_server {{ enabled on; listen 127.0.0.1:{self.srt}; }}\n"
            f"vhost __defaultVhost__ {{ srt {{ enabled on; }} http_hooks {{ enabled on; {hooks}}} }}\n")
        self.addCleanup(self.server.stop)
        self.procs = []
        self.addCleanup(lambda: [h.stop_process(p) for p in self.procs])

    def call(self, method, path):
        import treq
        from twisted.internet import defer

        @defer.inlineCallbacks
        def go():
            response = yield treq.request(method, f"http://127.0.0.1:{self.api}{path}", persistent=False, timeout=30)
            content = yield response.content()
            return response.code, content

        return go()

    def until(self, predicate, what):
        return self.receiver.wait_for(predicate, 60, what)

    def test_publish_hooks_api_listing_and_kick(self):
        from twisted.internet import defer

        @defer.inlineCallbacks
        def go():
            from tests.integration.receiver import until

            self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/hk,m=publish,token=abc"),
                                          h.clip("h264-aac")))
            yield self.until(lambda: self.receiver.bodies("on_publish"), "on_publish")
            (publish,) = self.receiver.bodies("on_publish")
            self.assertEqual((publish["app"], publish["stream"], publish["param"], publish["vhost"]),
                             ("live", "hk", "?token=abc", "__defaultVhost__"))
            self.assertEqual(publish["tcUrl"], "srt://127.0.0.1/live")
            (connect,) = self.receiver.bodies("on_connect")
            self.assertEqual(connect["client_id"], publish["client_id"])

            def listed():
                return self.call("GET", "/api/v1/clients/")

            clients = []

            @defer.inlineCallbacks
            def srt_client():
                code, body = yield listed()
                clients[:] = [c for c in json.loads(body)["clients"] if c["type"] == "srt-publish"]
                return bool(clients) and clients[0]["publish"]

            yield until(srt_client, bool, "an srt-publish client in /api/v1/clients")
            self.assertEqual(clients[0]["id"], publish["client_id"])
            code, _ = yield self.call("DELETE", f"/api/v1/clients/{clients[0]['id']}")
            self.assertEqual(code, 200)
            yield self.until(lambda: self.receiver.bodies("on_unpublish") and self.receiver.bodies("on_close"),
                             "on_unpublish and on_close after the kick")
            (close,) = self.receiver.bodies("on_close")[:1]
            self.assertEqual(close["client_id"], publish["client_id"])

        return go()

    def test_refusing_on_publish_shuts_the_caller(self):
        from twisted.internet import defer

        @defer.inlineCallbacks
        def go():
            from tests.integration.receiver import wait_exit

            self.receiver.replies["on_publish"] = (200, b'{"code":1}')
            proc = srt_publish(srt_url(self.srt, "#!::r=live/no,m=publish"), h.clip("h264-aac"))
            self.procs.append(proc)
            yield self.until(lambda: self.receiver.bodies("on_publish"), "on_publish")
            yield wait_exit(proc, 60)
            self.assertIn("publish denied", self.server.log())
            self.assertFalse(self.receiver.bodies("on_unpublish"))

        return go()


class SrtEncryption(SrtCase):
    """passphrase/pbkeylen: FFmpeg publishes encrypted with each key length, players decrypt;
    a wrong or missing passphrase is refused."""

    vhost = "srt { enabled on; }"
    server_extra = "passphrase srs-twisted-pass; pbkeylen 16;"
    PASS = "srs-twisted-pass"

    def test_encrypted_publish_each_key_length_plays_over_rtmp(self):
        clip = h.clip("h264-aac")
        for key_len in (16, 24, 32):
            stream = f"enc{key_len}"
            proc = srt_publish(srt_url(self.srt, f"#!::r=live/{stream},m=publish", passphrase=self.PASS,
                                       pbkeylen=key_len), clip)
            self.procs.append(proc)
            h.assert_streams(h.probe(self.server.url(stream)), [("video", "h264"), ("audio", "aac")])
            h.stop_process(proc)

    def test_encrypted_play_over_srt(self):
        clip = h.clip("h264-aac")
        self.procs.append(h.publish(self.server.url("encplay"), clip, loop=True))
        h.probe(self.server.url("encplay"))
        for key_len in (16, 24, 32):  # the caller's key length is used both ways (HSv5)
            info = h.probe(srt_url(self.srt, "#!::r=live/encplay,m=request", passphrase=self.PASS,
                                   pbkeylen=key_len))
            h.assert_streams(info, [("video", "h264"), ("audio", "aac")])

    def test_wrong_or_missing_passphrase_refused(self):
        for opts in ({"passphrase": "wrong-passphrase"}, {}):
            proc = subprocess.run([h.ffprobe(), "-v", "error", "-rw_timeout", "10000000",
                                   srt_url(self.srt, "#!::r=live/x,m=request", **opts)], capture_output=True,
                                  timeout=60)
            self.assertNotEqual(proc.returncode, 0)
        self.server.wait_log(r"refused: wrong passphrase")
        self.server.wait_log(r"refused: the listener has a passphrase and the caller does not encrypt")


class LossyRelay:
    """A UDP relay between one SRT caller and the server that drops a share of the datagrams
    both ways (seeded) and swaps neighbours (holds one back and sends it after the next)."""

    def __init__(self, target_port: int, loss: float, reorder: float = 0.05, seed: int = 12):
        import random
        import socket
        import threading

        self.rng = random.Random(seed)
        self.loss, self.reorder = loss, reorder
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.upstream.settimeout(0.05)
        self.client = None
        self.dropped = self.forwarded = self.swapped = 0
        self._held = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._pump, args=(True,), daemon=True),
                         threading.Thread(target=self._pump, args=(False,), daemon=True)]
        for t in self._threads:
            t.start()

    def _send(self, sock, data, addr, key):
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        held = self._held.pop(key, None)
        if held is None and self.rng.random() < self.reorder:
            self._held[key] = data
            return
        sock.sendto(data, addr)
        self.forwarded += 1
        if held is not None:
            sock.sendto(held, addr)
            self.swapped += 1

    def _pump(self, to_server: bool):
        import socket
        import time

        src = self.sock if to_server else self.upstream
        end = time.monotonic() + 300  # bounded even if stop() is never called
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                data, addr = src.recvfrom(2048)
            except (socket.timeout, OSError):
                continue
            if to_server:
                self.client = addr
                self._send(self.upstream, data, self.target, "up")
            elif self.client is not None:
                self._send(self.sock, data, self.client, "down")

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self.sock.close()
        self.upstream.close()


class SrtLoss(SrtCase):
    """FFmpeg publishes through a lossy, reordering relay; latency 200 ms."""

    vhost = "srt { enabled on; }"
    server_extra = "recvlatency 200; peerlatency 200;"

    def relay(self, loss):
        relay = LossyRelay(self.srt, loss)
        self.addCleanup(relay.stop)
        return relay

    def closed_summary(self):
        """The counters the server logged when the SRT publisher ended."""
        match = self.server.wait_log(r"SRT client closed .*type=srt-publish.*; (rtt_ms=.*)")
        return dict(kv.split("=") for kv in match.group(1).split())

    def test_five_percent_loss_is_recovered(self):
        relay = self.relay(0.05)
        clip = h.clip("h264-aac")
        proc = srt_publish(srt_url(relay.port, "#!::r=live/lossy,m=publish", latency=200), clip)
        self.procs.append(proc)
        h.probe(self.server.url("lossy"))
        out = os.path.join(tempfile.mkdtemp(prefix="srs-srt-"), "lossy.flv")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        result = h.record(self.server.url("lossy"), 6, out)
        self.assertEqual(result.returncode, 0, result.stderr[-500:])
        h.stop_process(proc)
        stats = self.closed_summary()
        self.assertGreater(relay.dropped, 20)
        self.assertGreater(relay.swapped, 5)
        self.assertGreater(int(stats["lost"]), 10)
        self.assertGreaterEqual(int(stats["recovered"]), int(stats["lost"]) - 2)  # a few at the very end
        self.assertEqual(int(stats["dropped"]), 0)
        dec = subprocess.run([h.ffmpeg(), "-v", "error", "-i", out, "-f", "null", "-"], capture_output=True,
                             timeout=120)
        self.assertEqual((dec.returncode, dec.stderr.decode(errors="replace").strip()), (0, ""))
        self.assertGreater(float(h.probe(out)["format"]["duration"]), 5.0)

    def test_twenty_percent_loss_degrades_without_stalling_others(self):
        relay = self.relay(0.20)
        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(relay.port, "#!::r=live/bad,m=publish", latency=200), clip))
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/good,m=publish"), clip))
        h.assert_streams(h.probe(self.server.url("good")), [("video", "h264"), ("audio", "aac")])
        h.wait_for(lambda: relay.dropped > 50, message="the relay dropped datagrams")
        out = os.path.join(tempfile.mkdtemp(prefix="srs-srt-"), "good.flv")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        result = h.record(self.server.url("good"), 4, out)
        self.assertEqual(result.returncode, 0, result.stderr[-500:])
        self.assertGreater(float(h.probe(out)["format"]["duration"]), 3.0)
        self.assertIsNone(self.server.proc.poll())


class SrtCodecs(SrtCase):
    vhost = "srt { enabled on; }"

    def test_hevc_and_mp3_publish(self):
        for kind, expected in (("hevc-aac", [("video", "hevc"), ("audio", "aac")]),
                               ("h264-mp3", [("video", "h264"), ("audio", "mp3")])):
            stream = kind.replace("-", "")
            proc = srt_publish(srt_url(self.srt, f"#!::r=live/{stream},m=publish"), h.clip(kind))
            self.procs.append(proc)
            # HEVC over RTMP is Enhanced RTMP: FFmpeg 9 records it, then ffprobe reads the file
            out = os.path.join(tempfile.mkdtemp(prefix="srs-srt-"), f"{stream}.mkv")
            self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
            result = h.record(self.server.url(stream), 3, out)
            self.assertEqual(result.returncode, 0, result.stderr[-500:])
            h.assert_streams(h.probe(out), expected)
            # and over SRT (MPEG-TS)
            h.assert_streams(h.probe(srt_url(self.srt, f"#!::r=live/{stream},m=request")), expected)
            h.stop_process(proc)


class SrtPlayLoss(SrtCase):
    """The play direction through the lossy relay: the server retransmits what
    srt-live-transmit NAKs.  The player's latency is 1 s: libsrt NAKs a loss again only
    after 300 ms (its minimum NAK interval), so a lost retransmission is recovered only
    with a latency above that."""

    vhost = "srt { enabled on; }"
    server_extra = "recvlatency 200; peerlatency 1000;"

    def test_player_losses_are_retransmitted(self):
        srt_live_transmit()
        clip = h.clip("h264-aac")
        self.procs.append(h.publish(self.server.url("pl"), clip, loop=True))
        h.probe(self.server.url("pl"))
        relay = LossyRelay(self.srt, 0.05, seed=5)
        self.addCleanup(relay.stop)
        out = os.path.join(tempfile.mkdtemp(prefix="srs-srt-"), "play.ts")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        srt_live_transmit_play(srt_url(relay.port, "#!::r=live/pl,m=request"), out)
        match = self.server.wait_log(r"SRT client closed .*type=srt-play.*; (rtt_ms=.*)")
        stats = dict(kv.split("=") for kv in match.group(1).split())
        self.assertGreater(relay.dropped, 10)
        self.assertGreater(int(stats["retransmitted"]), 5)
        self.assertGreater(int(stats["naks_received"]), 2)
        # (send_dropped is not checked: when timeout kills srt-live-transmit without a SHUTDOWN,
        # the server sends unacknowledged until peer_idle_timeout and gives those packets up)
        self.assertEqual(h.file_size(out) % 188, 0)
        dec = subprocess.run([h.ffmpeg(), "-v", "error", "-i", out, "-f", "null", "-"], capture_output=True,
                             timeout=120)
        self.assertEqual((dec.returncode, dec.stderr.decode(errors="replace").strip()), (0, ""))
        self.assertGreater(float(h.probe(out)["format"]["duration"]), 5.0)


def induction_answered(port: int) -> bool:
    """Whether an SRT listener answers a caller's induction on ``port`` (within 2 s)."""
    import socket

    from srs_twisted.srt.handshake import SrtCaller
    from srs_twisted.srt.packet import SRT_MAGIC, ControlPacket, Handshake

    caller = SrtCaller("live/x")
    caller.start(0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(caller.datagrams_to_send()[0], ("127.0.0.1", port))
        try:
            data = s.recv(2048)
        except OSError:
            return False
    return Handshake.parse(ControlPacket.parse(data).cif).extension == SRT_MAGIC


class SrtReload(SrtCase):
    vhost = "srt { enabled on; }"

    def reload(self, old: str, new: str):
        import signal

        with open(self.server.conf_path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(self.server.conf_path, "w") as f:
            f.write(text.replace(old, new))
        mark = len(self.server.log())
        self.server.proc.send_signal(signal.SIGHUP)
        self.server.wait_log(r"reload config ok", after=mark)
        return mark

    def test_sighup_moves_the_port_and_applies_latency(self):
        self.assertTrue(induction_answered(self.srt))
        new_port = h.free_port()
        self.reload(f"listen 127.0.0.1:{self.srt};", f"listen 127.0.0.1:{new_port}; recvlatency 250;")
        self.server.wait_log(r"SRT listen at udp://127\.0\.0\.1:%d, recvlatency=250ms" % new_port)
        self.assertTrue(induction_answered(new_port))
        self.assertFalse(induction_answered(self.srt))
        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(new_port, "#!::r=live/moved,m=publish"), clip))
        h.assert_streams(h.probe(self.server.url("moved")), [("video", "h264"), ("audio", "aac")])
        self.server.wait_log(r"SRT publish __defaultVhost__/live/moved .*latency rcv=250ms")
        mark = self.reload("srt_server { enabled on;", "srt_server { enabled off;")
        self.server.wait_log(r"SRT client closed .*type=srt-publish", after=mark)
        self.assertFalse(induction_answered(new_port))


class SrtHostile(SrtCase):
    vhost = "srt { enabled on; }"

    def test_garbage_and_half_open_handshakes_leave_a_publish_playing(self):
        import random
        import socket

        from srs_twisted.srt.handshake import SrtCaller

        clip = h.clip("h264-aac")
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/hostile,m=publish"), clip))
        h.probe(self.server.url("hostile"))
        rng = random.Random(3)
        target = ("127.0.0.1", self.srt)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(3000):
                kind = i % 3
                if kind == 0:
                    data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))
                elif kind == 1:  # an induction never followed up
                    caller = SrtCaller("live/x", rand=lambda n: bytes(rng.getrandbits(8) for _ in range(n)))
                    caller.start(0)
                    data = caller.datagrams_to_send()[0]
                else:  # a data packet to a made-up socket, or truncated garbage with a control bit
                    data = bytes([rng.choice((0x00, 0x80))]) + bytes(rng.getrandbits(8) for _ in range(15))
                s.sendto(data, target)
        h.assert_streams(h.probe(self.server.url("hostile")), [("video", "h264"), ("audio", "aac")])
        self.assertIsNone(self.server.proc.poll())
        self.assertLess(self.server.rss_kb(), 400_000)


class SrtHls(SrtCase):
    """An SRT publish is segmented to HLS like any other stream."""

    def setUp(self):
        self.hls_root = tempfile.mkdtemp(prefix="srs-srt-hls-")
        self.addCleanup(shutil.rmtree, self.hls_root, True)
        self.vhost = f"srt {{ enabled on; }} hls {{ enabled on; hls_path {self.hls_root}; hls_fragment 2; }}"
        super().setUp()

    def test_srt_publish_makes_hls(self):
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/hl,m=publish"), h.clip("h264-aac")))
        playlist = os.path.join(self.hls_root, "live", "hl.m3u8")

        def segments():
            try:
                with open(playlist) as f:
                    return [line.strip() for line in f if line.strip().endswith(".ts")]
            except OSError:
                return None

        names = h.wait_for(lambda: (segments() or [])[1:] and segments(), 90, message="two HLS segments")
        info = h.probe(os.path.join(self.hls_root, "live", names[0]))
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertGreater(float(info["format"]["duration"]), 1.0)


class SrtEarlyPlayer(SrtCase):
    vhost = "srt { enabled on; }"

    def test_player_waits_for_the_publisher(self):
        out = os.path.join(tempfile.mkdtemp(prefix="srs-srt-"), "early.ts")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        player = subprocess.Popen([h.ffmpeg(), "-v", "error", "-y", "-i",
                                   srt_url(self.srt, "#!::r=live/early,m=request"), "-t", "3", "-c", "copy", out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(player)
        self.server.wait_log(r"SRT play __defaultVhost__/live/early")  # connected before any publisher
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/early,m=publish"), h.clip("h264-aac")))
        self.assertEqual(player.wait(90), 0, player.stderr.read()[-500:])
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])
