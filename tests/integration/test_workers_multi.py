"""``workers 2`` end to end: one FFmpeg publisher and 60 RTMP + 60 HTTP-FLV light players
(tests/workers/players.py, one process) spread over both workers by SO_REUSEPORT.

In order, on one server: every player gets audio and video (those on the worker
without the publisher through one inter-worker pull), both workers hold players, HLS
is written by the owner worker only, the API (whichever worker answers) lists all 121
clients, a second publisher is refused on either worker, the API kicks a player held by
the other worker, a SIGKILLed worker is restarted
while the other worker's players keep playing, SIGHUP moves the API port on both
workers, and SIGTERM leaves no process behind."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from twisted.trial import unittest

from . import harness as h

PLAYERS = os.path.join(h.ROOT, "tests", "workers", "players.py")
RTMP_PLAYERS = HTTP_PLAYERS = 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class WorkersMulti(unittest.TestCase):
    def setUp(self):
        h.ffmpeg()
        self.hls = tempfile.mkdtemp(prefix="srs-workers-hls-")
        self.http, self.api, self.api2 = h.free_port(), h.free_port(), h.free_port()
        self.body = (
            "workers 2;\n"
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http}; dir {self.hls}; }}\n"
            "http_api { enabled on; listen 127.0.0.1:API; raw_api { enabled on; allow_reload on; } }\n"
            "vhost __defaultVhost__ {\n"
            "  http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
            f"  hls {{ enabled on; hls_path {self.hls}; hls_fragment 2; hls_window 10; }}\n"
            "}\n"
        )
        self.server = h.Server(self.body.replace("API", str(self.api)))
        self.addCleanup(self.server.stop)
        self.server.wait_log(r"\[sup\] srs-twisted started, 2 workers", timeout=60)
        self.procs = []
        self.addCleanup(self._stop_procs)

    def _stop_procs(self):
        for proc in self.procs:
            h.stop_process(proc)

    # --- helpers ---
    def privates(self) -> dict[int, dict]:
        """Each worker's private endpoints and pid, from its latest join line."""
        out = {}
        for m in re.finditer(r"\]\[(\d+)\]\[\w+\]\[w(\d)\] worker \d joined the supervisor, private rtmp=(\S+) api=(\S+)",
                             self.server.log()):
            out[int(m.group(2))] = {"pid": int(m.group(1)), "rtmp": m.group(3), "api": m.group(4)}
        return out

    def get(self, hostport: str, path: str, method: str = "GET", conn=None) -> dict:
        own = conn is None
        if own:
            host, port = hostport.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=h.WAIT)
        try:
            conn.request(method, path)
            return json.loads(conn.getresponse().read())
        finally:
            if own:
                conn.close()

    def worker_clients(self) -> dict[int, list]:
        return {i: self.get(p["api"], "/api/v1/clients/?count=1000")["clients"] for i, p in self.privates().items()}

    def status(self) -> list[dict]:
        try:
            with open(self.status_path) as f:
                return json.load(f)["players"]
        except (OSError, ValueError):
            return []

    # --- the scenario ---
    def test_workers_share_ports_streams_api_and_signals(self):
        server = self.server
        self.procs.append(h.publish(server.url(), h.clip(seconds=10), loop=True))
        h.wait_http_stream(f"http://127.0.0.1:{self.http}/live/livestream.flv")
        self.status_path = os.path.join(server.dir, "players.json")
        players = subprocess.Popen(
            [sys.executable, PLAYERS, "--rtmp-port", str(server.port), "--http-port", str(self.http),
             "-n", str(RTMP_PLAYERS), "-m", str(HTTP_PLAYERS), "--seconds", "240", "--status", self.status_path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(players)
        total = RTMP_PLAYERS + HTTP_PLAYERS

        # 1. Every player gets both tracks.
        def all_playing():
            st = self.status()
            return len(st) == total and all(p["audio"] > 10 and p["video"] > 10 for p in st)

        h.wait_for(all_playing, 90, interval=0.5, message=lambda: [p for p in self.status() if not p["video"]][:5])

        # 2. Both workers hold players; the publisher is on one (the owner).
        per = self.worker_clients()
        owner = next(i for i, cs in per.items() if any(c["publish"] for c in cs))
        other = 1 - owner
        # The owner also serves the other worker's one pull (a player of its private port).
        private = self.privates()[owner]["rtmp"]
        pulls = [c for c in per[owner] if private in c["tcUrl"]]
        self.assertEqual(len(pulls), 1)
        plays = {i: [c for c in cs if not c["publish"] and private not in c["tcUrl"]] for i, cs in per.items()}
        self.assertGreaterEqual(len(plays[0]), 10, f"worker 0 holds {len(plays[0])} players")
        self.assertGreaterEqual(len(plays[1]), 10, f"worker 1 holds {len(plays[1])} players")
        self.assertEqual(len(plays[0]) + len(plays[1]), total)

        # 3. HLS is written once, by the owner worker.
        h.wait_for(lambda: os.path.exists(os.path.join(self.hls, "live", "livestream.m3u8")), 60)
        starts = re.findall(r"\[(w\d)\] hls: start __defaultVhost__/live/livestream", server.log())
        self.assertEqual(starts, [f"w{owner}"])

        # 4. The API lists all 121 clients, whichever worker answers.
        for _ in range(4):
            clients = self.get(f"127.0.0.1:{self.api}", "/api/v1/clients/?count=200")["clients"]
            self.assertEqual(len(clients), total + 1)
            streams = self.get(f"127.0.0.1:{self.api}", "/api/v1/streams/")["streams"]
            self.assertEqual(len(streams), 1)
            self.assertEqual(streams[0]["clients"], total + 1)
            self.assertEqual({c["stream"] for c in clients}, {streams[0]["id"]})

        # 4b. A second publisher of the stream is refused on either worker: on the owner by
        # its own source, on the other one by the directory's claim. Each worker is reached
        # for sure through its private RTMP port (the same factory and policy as the shared
        # port), then once through the shared port, wherever SO_REUSEPORT puts it.
        privates = self.privates()
        for url in (f"rtmp://{privates[owner]['rtmp']}/live/livestream",
                    f"rtmp://{privates[other]['rtmp']}/live/livestream", server.url()):
            second = h.publish(url, h.clip(seconds=10))
            self.assertNotEqual(second.wait(h.WAIT), 0, url)
            second.stderr.close()
        server.wait_log(rf"\[w{other}\] cluster: refuse publish of __defaultVhost__/live/livestream: .* node w{owner}")
        h.wait_for(lambda: len(self.get(f"127.0.0.1:{self.api}", "/api/v1/clients/?count=200")["clients"]) == total + 1,
                   30, message="a refused publisher stayed listed")

        # 5. A kick reaches the worker holding the client: on one keep-alive connection
        # (one answering worker), kick a player of the other worker.
        conn = http.client.HTTPConnection("127.0.0.1", self.api, timeout=h.WAIT)
        self.addCleanup(conn.close)
        answer = self.get("", "/api/v1/clients/?count=200", conn=conn)
        answering = next(i for i, p in self.privates().items() if p["pid"] == int(answer["pid"]))
        victim = next(c for c in plays[1 - answering])
        kicked = self.get("", f"/api/v1/clients/{victim['id']}", "DELETE", conn=conn)
        self.assertEqual(kicked["code"], 0)
        self.assertEqual(int(answer["pid"]), int(self.get("", "/api/v1/versions", conn=conn)["pid"]))
        h.wait_for(lambda: sum(p["state"] == "closed" for p in self.status()) == 1, 30)
        h.wait_for(lambda: len(self.get(f"127.0.0.1:{self.api}", "/api/v1/clients/?count=200")["clients"]) == total,
                   30)
        self.assertEqual(self.get(f"127.0.0.1:{self.api}", f"/api/v1/clients/{victim['id']}")["code"], 2049)

        # 6. SIGKILL the worker without the publisher: it is restarted; the owner's players play on.
        before = self.privates()
        dead_pid = before[other]["pid"]
        keep = len(plays[owner]) - (1 if answering == other else 0)  # less the kicked one, if it was there
        os.kill(dead_pid, signal.SIGKILL)
        server.wait_log(rf"\[sup\] worker {other} pid={dead_pid} exited \(signal 9\)")
        h.wait_for(lambda: self.privates().get(other, {}).get("pid") not in (None, dead_pid), 60,
                   message="the killed worker was not restarted")
        closed = h.wait_for(lambda: [p for p in self.status() if p["state"] == "closed"]
                            if sum(p["state"] == "closed" for p in self.status()) >= total - keep else None, 30)
        self.assertEqual(len(closed), total - keep)
        alive = [i for i, p in enumerate(self.status()) if p["state"] != "closed"]
        self.assertEqual(len(alive), keep)
        snapshot = {i: self.status()[i]["bytes"] for i in alive}
        h.wait_for(lambda: all(self.status()[i]["bytes"] > snapshot[i] + 20000 for i in alive), 30,
                   message="the other worker's players stopped")

        # 7. SIGHUP moves the API port on every worker.
        with open(server.conf_path) as f:
            text = f.read()
        with open(server.conf_path, "w") as f:
            f.write(text.replace(f"127.0.0.1:{self.api};", f"127.0.0.1:{self.api2};"))
        mark = len(server.log())
        os.kill(server.proc.pid, signal.SIGHUP)
        for i in (0, 1):
            server.wait_log(rf"\[w{i}\] reload config ok.*tcp:{self.api2}:", after=mark)
        pids = set()
        h.wait_for(lambda: pids.add(self.get(f"127.0.0.1:{self.api2}", "/api/v1/versions")["pid"]) or len(pids) == 2,
                   30, interval=0.01, message="the new API port is not served by both workers")
        with self.assertRaises(OSError):
            self.get(f"127.0.0.1:{self.api}", "/api/v1/versions")

        # 8. SIGTERM: the supervisor, both workers, nothing left; the pid file removed.
        workers = [p["pid"] for p in self.privates().values()]
        self.assertTrue(all(_alive(pid) for pid in workers))
        with open(os.path.join(server.dir, "srs.pid")) as f:
            self.assertEqual(int(f.read()), server.proc.pid)
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.proc.wait(h.WAIT), 0)
        self.assertEqual([pid for pid in workers if _alive(pid)], [])
        self.assertFalse(os.path.exists(os.path.join(server.dir, "srs.pid")))


class WorkersLowLatencyHls(unittest.TestCase):
    """LL-HLS with ``workers 2``: parts and blocking reloads live in the owner's memory;
    a request landing on the other worker is answered from the owner."""

    def test_blocking_reloads_answered_by_the_owner_from_either_worker(self):
        import urllib.request

        from ..hls.llhls_rules import check_ll_playlist, find_part, next_part

        h.ffmpeg()
        root = tempfile.mkdtemp(prefix="srs-workers-llhls-")
        http = h.free_port()
        server = h.Server(
            "workers 2;\n"
            f"http_server {{ enabled on; listen 127.0.0.1:{http}; dir {root}; }}\n"
            f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {root}; hls_fragment 2; "
            "hls_low_latency on; hls_part_duration 0.5; } }\n")
        self.addCleanup(server.stop)
        server.wait_log(r"\[sup\] srs-twisted started, 2 workers", timeout=60)
        pub = h.publish(server.url(), h.clip(seconds=10), loop=True)
        self.addCleanup(h.stop_process, pub)
        url = f"http://127.0.0.1:{http}/live/livestream.m3u8"

        def get(target):
            # A fresh connection each time: the kernel spreads them over both workers.
            with urllib.request.urlopen(target, timeout=h.WAIT) as r:
                return r.read().decode()

        def playlist():
            try:
                return check_ll_playlist(get(url))
            except (OSError, AssertionError, ValueError):
                return None

        info = h.wait_for(playlist, 60, interval=0.2, message="no LL-HLS playlist")
        for _ in range(10):
            msn, part = next_part(info)
            text = get(f"{url}?_HLS_msn={msn}&_HLS_part={part}")
            self.assertIn("#EXT-X-PART:", text)
            info = check_ll_playlist(text)
            self.assertIsNotNone(find_part(info, msn, part) or find_part(info, msn + 1, 0), (msn, part))
        self.assertEqual(len(re.findall(r"\[(w\d)\] hls: start", server.log())), 1)


class WorkersUnderTwistd(unittest.TestCase):
    """``twistd -n srs`` with ``workers 2``: the supervisor as twistd's service."""

    def twistd(self, conf_body: str):
        d = tempfile.mkdtemp(prefix="srs-twistd-workers-")
        self.addCleanup(shutil.rmtree, d, True)
        self.pid_file, self.out_path = os.path.join(d, "twistd.pid"), os.path.join(d, "out.log")
        conf = os.path.join(d, "srs.conf")
        with open(conf, "w") as f:
            f.write(conf_body)
        out = open(self.out_path, "wb")
        self.addCleanup(out.close)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile", self.pid_file, "srs", "-c", conf],
            cwd=d, env=dict(os.environ, PYTHONPATH=h.ROOT), stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(h.stop_process, proc)
        return proc

    def output(self) -> str:
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def test_starts_reloads_and_stops_every_worker(self):
        rtmp = h.free_port()
        proc = self.twistd(f"listen 127.0.0.1:{rtmp}; workers 2; daemon off; srs_log_tank console;\n"
                           "vhost __defaultVhost__ {}\n")
        started = h.wait_for(lambda: re.search(r"\[sup\] srs-twisted started, 2 workers: w0 pid=(\d+), w1 pid=(\d+)",
                                               self.output()), 60, message=self.output)
        workers = [int(started.group(1)), int(started.group(2))]
        with open(self.pid_file) as f:
            self.assertEqual(int(f.read()), proc.pid)
        proc.send_signal(signal.SIGHUP)
        h.wait_for(lambda: len(re.findall(r"\[w\d\] reload config ok", self.output())) == 2, 30, message=self.output)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(h.WAIT), 0)
        self.assertEqual([pid for pid in workers if _alive(pid)], [])
        self.assertFalse(os.path.exists(self.pid_file))
        self.assertNotIn("Traceback", self.output())

    def test_busy_port_is_one_error_line_and_exit_1(self):
        import socket

        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = self.twistd(f"listen 127.0.0.1:{port}; workers 2; daemon off; srs_log_tank console;\n"
                           "vhost __defaultVhost__ {}\n")
        self.assertEqual(proc.wait(h.WAIT), 1)
        lines = self.output().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"[sup] start server failed: rtmp cannot listen on 127.0.0.1:{port}: Address already in use",
                      lines[0])
        self.assertFalse(os.path.exists(self.pid_file))


class WorkersWebRtc(unittest.TestCase):
    """WebRTC with ``workers 2``: worker i listens on UDP port + i, and the worker that
    answers a WHIP POST (the session's owner) names its own port in the candidate."""

    def test_each_answer_names_the_answering_workers_port(self):
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER
        from tests.integration import netns
        from tests.integration.test_rtc_plain import api_request

        netns.enter()
        api, udp = h.free_port(), h.free_port()
        server = h.Server(
            "workers 2;\n"
            f"http_api {{ enabled on; listen 127.0.0.1:{api}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{udp}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n")
        self.addCleanup(server.stop)
        server.wait_log(r"\[sup\] srs-twisted started, 2 workers", timeout=60)
        server.wait_log(rf"\[w0\] RTC listen at udp://127.0.0.1:{udp},")
        server.wait_log(rf"\[w1\] RTC listen at udp://127.0.0.1:{udp + 1},")
        ports = {}
        for i in range(16):  # fresh connections: both workers answer some
            reply = api_request(api, "POST", f"/rtc/v1/whip/?app=live&stream=s{i}", FFMPEG_WHIP_OFFER)
            self.assertEqual(reply.status, 201, reply.body)
            found = re.findall(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", reply.body.decode())
            self.assertEqual(len(set(found)), 1, reply.body)
            ports[f"s{i}"] = int(found[0])
        self.assertEqual(set(ports.values()), {udp, udp + 1})
        # The session is held by the worker whose port the answer named.
        privates = {int(m.group(1)): m.group(2) for m in re.finditer(
            r"\[w(\d)\] worker \d joined the supervisor, private rtmp=\S+ api=(\S+)", server.log())}
        for index, hostport in privates.items():
            host, port = hostport.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=h.WAIT)
            conn.request("GET", "/api/v1/clients/?count=100")
            held = {c["name"] for c in json.loads(conn.getresponse().read())["clients"]}
            conn.close()
            self.assertEqual(held, {s for s, p in ports.items() if p == udp + index})
