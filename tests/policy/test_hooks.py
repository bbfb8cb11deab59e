"""HTTP hooks without sockets: SRS's reply rule, the order of several URLs,
timeouts on a task.Clock, and every action's body field by field."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted import log as srs_log
from srs_twisted.errors import Denied
from srs_twisted.policy.hooks import (
    FIELDS,
    HookError,
    HooksPolicy,
    HttpHooksClient,
    check_reply,
    dumps,
    forward_urls,
    hook_body,
    reply_error,
)

from .common import ScriptedHttp, make_client, make_ctx

HOOKS_CONF = """
vhost __defaultVhost__ {
    http_hooks {
        enabled on;
        on_connect http://h/connect;
        on_close http://h/close;
        on_publish http://h/publish http://h/publish2;
        on_unpublish http://h/unpublish http://h/unpublish2;
        on_play http://h/play;
        on_stop http://h/stop;
        on_dvr http://h/dvr http://h/dvr2;
        on_hls http://h/hls;
        on_hls_notify http://cdn/[server_id]/[service_id]/[app]/[stream]/[ts_url][param];
    }
    hls { hls_nb_notify 32; }
    forward { enabled on; backend http://h/forward; }
}
vhost off.example.com {
    http_hooks { enabled off; on_publish http://h/never; on_connect http://h/never; }
}
"""


class ReplyRuleTests(unittest.TestCase):
    """do_post in srs_app_http_hooks.cpp, case by case."""

    def test_accepted(self):
        for status, body in [
            (200, b"0"),
            (201, b"0"),
            (200, b'{"code":0}'),
            (201, b'{"code":0}'),
            (200, b'{"code": 0, "data": {"x": 1}}'),
            (200, b' {"code":0}\r\n'),  # whitespace around an object is JSON
            (200, b'{"code":-0}'),
            (200, b'\xef\xbb\xbf{"code":0}'),  # json-parser skips a UTF-8 BOM
            (200, b'{"code":0,"code":1}'),  # the first of repeated keys
            (200, b'{"code":0,"msg":"\xff\xfe"}'),  # bytes that are not UTF-8
        ]:
            self.assertTrue(check_reply(status, body), (status, body))
            self.assertIsNone(reply_error(status, body))

    def test_refused(self):
        for status, body in [
            (200, b'{"code":1}'),
            (200, b'{"code":-1}'),
            (200, b""),
            (500, b"0"),
            (500, b'{"code":0}'),
            (204, b"0"),
            (302, b"0"),
            (404, b""),
            (200, b"abc"),
            (200, b"1"),
            (200, b"00"),
            (200, b" 0"),  # not trimmed: JSON, but not the literal 0
            (200, b"0\n"),
            (200, b"0.0"),
            (200, b'"0"'),
            (200, b"true"),
            (200, b"null"),
            (200, b"[0]"),
            (200, b'{"code":"0"}'),
            (200, b'{"code":0.0}'),
            (200, b'{"code":0e0}'),
            (200, b'{"code":false}'),
            (200, b'{"code":null}'),
            (200, b'{"Code":0}'),
            (200, b"{}"),
            (200, b'{"code":0} x'),
            (200, b'{"code":NaN}'),
            (200, b'{"code":1,"code":0}'),
            (200, b"\xef\xbb\xbf0"),
        ]:
            self.assertFalse(check_reply(status, body), (status, body))
            self.assertIsInstance(reply_error(status, body), str)

    def test_reasons_are_precise(self):
        self.assertEqual(reply_error(404, b""), "http status 404")
        self.assertEqual(reply_error(200, b""), "empty response")
        self.assertIn("code 7", reply_error(200, b'{"code":7}'))
        self.assertIn("not json", reply_error(200, b"abc"))
        self.assertIn("number code", reply_error(200, b"1"))

    def test_static_method_alias(self):
        self.assertTrue(HttpHooksClient.check_reply(200, b"0"))

    def test_on_forward_urls_read_as_the_reply_rule_reads_the_body(self):
        # A reply the rule accepts (read as latin-1) used to raise UnicodeDecodeError when its URLs
        # were read as UTF-8 (found by fuzz/targets/web.py hook_reply).
        body = b'{"code":0,"data":{"urls":["rtmp://h/live/\xff", "", 5, "rtmp://h/b"]}}'
        self.assertIsNone(reply_error(200, body))
        self.assertEqual(forward_urls(body), ["rtmp://h/live/\xff", "rtmp://h/b"])
        self.assertEqual(forward_urls(b"\xef\xbb\xbf" + body)[1], "rtmp://h/b")
        for bad, why in ((b"0", "no data object"), (b'{"code":0,"data":{}}', "no urls array"),
                         (b'{"code":0,"data":{"urls":NaN}}', "not json")):
            with self.assertRaises(ValueError) as e:
                forward_urls(bad)
            self.assertIn(why, str(e.exception))


class DumpsTests(unittest.TestCase):
    def test_compact_in_order_with_srs_numbers(self):
        body = {"a": "x", "n": 3, "d": 9.966, "t": True, "s": 'q"\\\n', "u": "é"}
        self.assertEqual(dumps(body), '{"a":"x","n":3,"d":9.97,"t":true,"s":"q\\"\\\\\\n","u":"é"}'.encode())


class FakeResponse:
    """Enough of IResponse for HttpHooksClient.request."""

    def __init__(self, code, chunks):
        self.code = code
        self.chunks = chunks
        self.protocol = None

    def deliverBody(self, proto):
        self.protocol = proto
        proto.makeConnection(self)
        for chunk in self.chunks:
            if proto.transport is None:
                break
            proto.dataReceived(chunk)
        if self.chunks is not None and not getattr(self, "hold", False):
            from twisted.python.failure import Failure
            from twisted.web.client import ResponseDone

            proto.connectionLost(Failure(ResponseDone()))

    stopped = False

    def stopProducing(self):
        self.stopped = True


class FakeAgent:
    def __init__(self, response=None, never=False):
        self.response = response
        self.never = never
        self.calls = []
        self.cancelled = False

    def request(self, method, uri, headers, producer):
        body = []
        if producer is not None:

            class Consumer:
                def write(self, data):
                    body.append(data)

            producer.startProducing(Consumer())
        self.calls.append((method, uri, headers, b"".join(body), producer))
        if self.never:
            def cancel(d):
                self.cancelled = True

            return defer.Deferred(cancel)
        return defer.succeed(self.response)


class ClientTransportTests(unittest.TestCase):
    """HttpHooksClient.post/get over a fake Agent: method, headers, body,
    size bound and timeout."""

    def test_post_sends_json_and_returns_status_and_body(self):
        agent = FakeAgent(FakeResponse(201, [b'{"co', b'de":0}']))
        http = HttpHooksClient(Clock(), agent=agent)
        result = self.successResultOf(http.post("http://h:8085/api/v1/streams?x=1", {"action": "on_publish", "n": 1}))
        self.assertEqual(result, (201, b'{"code":0}'))
        method, uri, headers, data, producer = agent.calls[0]
        self.assertEqual((method, uri), (b"POST", b"http://h:8085/api/v1/streams?x=1"))
        self.assertEqual(data, b'{"action":"on_publish","n":1}')
        self.assertEqual(producer.length, len(data))
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertTrue(headers.getRawHeaders(b"user-agent")[0].startswith(b"srs-twisted/"))

    def test_reply_larger_than_the_bound_fails(self):
        response = FakeResponse(200, [b"x" * 40, b"y" * 40])
        http = HttpHooksClient(Clock(), max_body=64, agent=FakeAgent(response))
        failure = self.failureResultOf(http.post("http://h/", {}), HookError)
        self.assertIn("larger than 64 bytes", failure.getErrorMessage())
        self.assertTrue(response.stopped)

    def test_reply_of_exactly_the_bound_is_read(self):
        http = HttpHooksClient(Clock(), max_body=8, agent=FakeAgent(FakeResponse(200, [b"12345678"])))
        self.assertEqual(self.successResultOf(http.post("http://h/", {})), (200, b"12345678"))

    def test_get_truncates_to_max_bytes(self):
        response = FakeResponse(200, [b"abcdef", b"ghijkl"])
        agent = FakeAgent(response)
        http = HttpHooksClient(Clock(), agent=agent)
        self.assertEqual(self.successResultOf(http.get("http://h/n", 8)), (200, b"abcdefgh"))
        self.assertEqual(agent.calls[0][0], b"GET")
        self.assertIsNone(agent.calls[0][4])
        self.assertTrue(response.stopped)

    def test_timeout_cancels_the_request(self):
        clock = Clock()
        agent = FakeAgent(never=True)
        http = HttpHooksClient(clock, timeout=5, agent=agent)
        d = http.post("http://h/slow", {})
        clock.advance(4.9)
        self.assertNoResult(d)
        clock.advance(0.2)
        failure = self.failureResultOf(d, HookError)
        self.assertIn("no reply from http://h/slow in 5s", failure.getErrorMessage())
        self.assertTrue(agent.cancelled)

    def test_timeout_while_reading_the_body_stops_it(self):
        clock = Clock()
        response = FakeResponse(200, [b"{"])
        response.hold = True
        http = HttpHooksClient(clock, timeout=2, agent=FakeAgent(response))
        d = http.post("http://h/", {})
        self.assertNoResult(d)
        clock.advance(2)
        self.failureResultOf(d, HookError)
        self.assertTrue(response.stopped)

    def test_not_http_urls_fail(self):
        http = HttpHooksClient(Clock(), agent=FakeAgent())
        for url in ["rtmp://h/x", "h:8080/x", "", "http:///x"]:
            self.failureResultOf(http.post(url, {}), HookError)


class BlockingAndNotifyTests(unittest.TestCase):
    def setUp(self):
        self.events = []
        self.addCleanup(srs_log.capture(self.events))

    def test_all_urls_in_order_when_all_accept(self):
        http = ScriptedHttp(replies={"http://a": (200, b"0"), "http://b": (201, b'{"code":0}')})
        self.successResultOf(http.call_blocking(["http://a", "http://b"], {"action": "on_play", "client_id": "c1"}))
        self.assertEqual(http.urls(), ["http://a", "http://b"])
        self.assertEqual(http.requests[0][0], b"POST")
        self.assertEqual(http.requests[0][2], b'{"action":"on_play","client_id":"c1"}')

    def test_first_failure_stops(self):
        for bad in [(200, b'{"code":1}'), (404, b"0"), (200, b""), ConnectionRefusedError("nope")]:
            http = ScriptedHttp(replies={"http://b": bad})
            d = http.call_blocking(["http://a", "http://b", "http://c"], {"action": "on_publish"})
            failure = self.failureResultOf(d, Denied)
            self.assertEqual(http.urls(), ["http://a", "http://b"], bad)
            self.assertIn("on_publish", failure.getErrorMessage())
            self.assertIn("http://b", failure.getErrorMessage())

    def test_timeout_denies(self):
        clock = Clock()
        http = ScriptedHttp(clock, replies={"http://slow": None}, timeout=30)
        d = http.call_blocking(["http://slow", "http://next"], {"action": "on_connect"})
        clock.advance(29)
        self.assertNoResult(d)
        clock.advance(1)
        failure = self.failureResultOf(d, Denied)
        self.assertIn("no reply from http://slow in 30s", failure.getErrorMessage())
        self.assertEqual(http.urls(), ["http://slow"])

    def test_no_urls_allows(self):
        http = ScriptedHttp()
        self.successResultOf(http.call_blocking([], {"action": "on_play"}))
        self.assertEqual(http.requests, [])

    def test_notify_tries_every_url_and_never_fails(self):
        clock = Clock()
        http = ScriptedHttp(
            clock,
            replies={"http://a": (500, b""), "http://b": ConnectionRefusedError("x"), "http://c": None},
            timeout=3,
        )
        d = http.notify(["http://a", "http://b", "http://c", "http://d"], {"action": "on_stop", "client_id": "k7"})
        self.assertNoResult(d)
        clock.advance(3)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(http.urls(), ["http://a", "http://b", "http://c", "http://d"])
        warns = [m for (_lvl, cid, m) in self.events if "ignore on_stop failed" in m]
        self.assertEqual(len(warns), 3)
        self.assertTrue(all(cid == "k7" for (_l, cid, m) in self.events if "on_stop" in m))

    def test_call_logged_reports_instead_of_failing(self):
        http = ScriptedHttp(replies={"http://a": (200, b"1")})
        self.assertFalse(self.successResultOf(http.call_logged(["http://a", "http://b"], {"action": "on_dvr"})))
        self.assertEqual(http.urls(), ["http://a"])
        self.assertTrue(self.successResultOf(http.call_logged(["http://b"], {"action": "on_dvr"})))


class HooksCase(unittest.TestCase):
    """A HooksPolicy on HOOKS_CONF with a scripted network, and one client."""

    def setUp(self):
        self.ctx = make_ctx(HOOKS_CONF)
        self.http = ScriptedHttp(self.ctx.clock)
        self.policy = HooksPolicy(self.ctx, self.http, cwd="/srs")
        self.client = make_client(self.ctx)
        self.sid = self.client.source.id


class PolicyTests(HooksCase):

    def body(self, i=0):
        return json.loads(self.http.requests[i][2])

    def common(self, action, cid="cid00001"):
        return [
            ("server_id", "vid-srv0001"),
            ("service_id", "svc12345"),
            ("action", action),
            ("client_id", cid),
            ("ip", "192.168.1.10"),
            ("vhost", "__defaultVhost__"),
            ("app", "live"),
        ]

    def stream_fields(self):
        """on_publish, on_unpublish and on_stop: the same fields after the common ones."""
        return [
            ("tcUrl", "rtmp://127.0.0.1:1935/live"),
            ("stream", "livestream"),
            ("param", "?token=abc"),
            ("stream_url", "/live/livestream"),
            ("stream_id", self.sid),
        ]

    def assertBody(self, i, expected):
        raw = self.http.requests[i][2]
        self.assertEqual(list(json.loads(raw).items()), expected)
        # exact bytes: SRS's compact JSON in SRS's order
        self.assertEqual(raw, dumps(dict(expected)))

    def test_on_connect(self):
        self.successResultOf(self.policy.on_connect(self.client))
        self.assertEqual(self.http.urls(), ["http://h/connect"])
        self.assertBody(0, self.common("on_connect") + [
            ("stream", "livestream"),
            ("param", "?token=abc"),
            ("tcUrl", "rtmp://127.0.0.1:1935/live"),
            ("pageUrl", "http://www.ossrs.net/players/srs_player.html"),
        ])

    def test_on_publish_asks_every_url(self):
        self.successResultOf(self.policy.on_publish(self.client))
        self.assertEqual(self.http.urls(), ["http://h/publish", "http://h/publish2"])
        expected = self.common("on_publish") + self.stream_fields()
        self.assertBody(0, expected)
        self.assertBody(1, expected)

    def test_on_unpublish(self):
        self.successResultOf(self.policy.on_unpublish(self.client))
        self.assertEqual(self.http.urls(), ["http://h/unpublish", "http://h/unpublish2"])
        self.assertBody(0, self.common("on_unpublish") + self.stream_fields())

    def test_on_play(self):
        self.successResultOf(self.policy.on_play(self.client))
        self.assertBody(0, self.common("on_play") + [
            ("stream", "livestream"),
            ("tcUrl", "rtmp://127.0.0.1:1935/live"),
            ("param", "?token=abc"),
            ("pageUrl", "http://www.ossrs.net/players/srs_player.html"),
            ("stream_url", "/live/livestream"),
            ("stream_id", self.sid),
        ])

    def test_on_stop(self):
        self.successResultOf(self.policy.on_stop(self.client))
        self.assertBody(0, self.common("on_stop") + self.stream_fields())

    def test_on_close(self):
        self.successResultOf(self.policy.on_close(self.client))
        self.assertEqual(self.http.urls(), ["http://h/close"])
        self.assertBody(0, self.common("on_close") + [("send_bytes", 5678), ("recv_bytes", 1234)])

    def test_each_clients_hooks_are_sent_in_order(self):
        self.http.replies["http://h/unpublish"] = None  # pending until we answer
        d1 = self.policy.on_unpublish(self.client)
        d2 = self.policy.on_close(self.client)
        other = make_client(self.ctx, cid="other001")
        self.successResultOf(self.policy.on_close(other))  # another client is not held up
        self.assertEqual(self.http.urls(), ["http://h/unpublish", "http://h/close"])
        self.assertNoResult(d2)
        self.http.pending.pop().callback((200, b"0"))
        self.successResultOf(d1)
        self.successResultOf(d2)
        self.assertEqual(self.http.urls(), ["http://h/unpublish", "http://h/close", "http://h/unpublish2", "http://h/close"])
        self.assertEqual(self.policy._tails, {})

    def test_a_refusal_does_not_block_the_next_hook(self):
        self.http.replies["http://h/publish"] = None
        d1 = self.policy.on_publish(self.client)
        d2 = self.policy.on_close(self.client)
        self.assertEqual(self.http.urls(), ["http://h/publish"])
        self.http.pending.pop().callback((200, b"1"))
        self.failureResultOf(d1, Denied)
        self.successResultOf(d2)
        self.assertEqual(self.http.urls(), ["http://h/publish", "http://h/close"])
        self.assertEqual(self.policy._tails, {})

    def test_no_on_close_before_the_rtmp_connect(self):
        from srs_twisted.context import ClientInfo

        self.successResultOf(self.policy.on_close(ClientInfo(ip="127.0.0.1", id="probe001")))
        self.assertEqual(self.http.requests, [])

    def test_stream_id_left_out_without_a_source(self):
        client = make_client(self.ctx, with_source=False)
        self.successResultOf(self.policy.on_publish(client))
        self.assertNotIn("stream_id", self.body())
        self.assertEqual(list(self.body())[-1], "stream_url")

    def test_named_vhost_in_stream_url(self):
        ctx = make_ctx(HOOKS_CONF.replace("vhost off.example.com", "vhost live.example.com").replace(
            "enabled off; on_publish http://h/never", "enabled on; on_publish http://h/v"))
        http = ScriptedHttp(ctx.clock)
        client = make_client(ctx, tc_url="rtmp://10.0.0.1/live?vhost=live.example.com", stream="s")
        self.successResultOf(HooksPolicy(ctx, http).on_publish(client))
        self.assertEqual(http.urls(), ["http://h/v"])
        body = json.loads(http.requests[0][2])
        self.assertEqual((body["vhost"], body["stream_url"], body["param"], body["tcUrl"]),
                         ("live.example.com", "live.example.com/live/s", "?vhost=live.example.com",
                          "rtmp://10.0.0.1/live?vhost=live.example.com"))

    def test_denied_by_a_url(self):
        self.http.replies["http://h/publish2"] = (200, b'{"code":403}')
        failure = self.failureResultOf(self.policy.on_publish(self.client), Denied)
        self.assertIn("code 403", failure.getErrorMessage())
        self.http.replies["http://h/play"] = (200, b"")
        self.failureResultOf(self.policy.on_play(self.client), Denied)
        self.http.replies["http://h/connect"] = (404, b"0")
        self.failureResultOf(self.policy.on_connect(self.client), Denied)

    def test_notifications_ignore_failures(self):
        self.http.replies["http://h/unpublish"] = (500, b"")
        self.successResultOf(self.policy.on_unpublish(self.client))
        self.assertEqual(self.http.urls(), ["http://h/unpublish", "http://h/unpublish2"])

    def test_disabled_hooks_call_nothing(self):
        client = make_client(self.ctx, vhost="off.example.com")
        for method in ("on_connect", "on_publish", "on_play", "on_unpublish", "on_stop", "on_close"):
            self.successResultOf(getattr(self.policy, method)(client))
        self.assertEqual(self.http.requests, [])

    def test_connect_and_close_are_rtmp_only(self):
        client = make_client(self.ctx, protocol="http-flv")
        self.successResultOf(self.policy.on_connect(client))
        self.successResultOf(self.policy.on_close(client))
        self.assertEqual(self.http.requests, [])
        self.successResultOf(self.policy.on_play(client))
        self.successResultOf(self.policy.on_stop(client))
        self.assertEqual(self.http.urls(), ["http://h/play", "http://h/stop"])

    def test_config_read_at_each_call(self):
        self.ctx.config = make_ctx("vhost __defaultVhost__ { http_hooks { enabled on; on_play http://new; } }").config
        self.successResultOf(self.policy.on_play(self.client))
        self.assertEqual(self.http.urls(), ["http://new"])

    def test_client_class_is_built_on_the_context_clock(self):
        policy = HooksPolicy(self.ctx)
        self.assertIsInstance(policy.http, HttpHooksClient)
        self.assertIs(policy.http.reactor, self.ctx.clock)
        self.assertEqual(policy.http.timeout, 30.0)

    def test_field_table_covers_srs_actions(self):
        self.assertEqual(
            sorted(FIELDS),
            sorted(["on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop",
                    "on_dvr", "on_hls", "on_forward"]),
        )


class HelperTests(HooksCase):
    """on_dvr, on_hls, on_hls_notify and on_forward, for the features that
    will call them."""

    def setUp(self):
        super().setUp()
        self.events = []
        self.addCleanup(srs_log.capture(self.events))

    def test_on_dvr_body(self):
        file = "./objs/nginx/html/live/livestream.1420254068776.flv"
        self.assertTrue(self.successResultOf(self.policy.on_dvr(self.client, file, cid="pub00001")))
        self.assertEqual(self.http.urls(), ["http://h/dvr", "http://h/dvr2"])
        body = json.loads(self.http.requests[0][2])
        self.assertEqual(list(body.items()), [
            ("server_id", "vid-srv0001"), ("service_id", "svc12345"), ("action", "on_dvr"),
            ("client_id", "pub00001"), ("ip", "192.168.1.10"), ("vhost", "__defaultVhost__"), ("app", "live"),
            ("tcUrl", "rtmp://127.0.0.1:1935/live"), ("stream", "livestream"), ("param", "?token=abc"),
            ("cwd", "/srs"), ("file", file), ("stream_url", "/live/livestream"), ("stream_id", self.sid),
        ])

    def test_on_dvr_first_failure_stops_and_is_logged(self):
        self.http.replies["http://h/dvr"] = (200, b'{"code":5}')
        self.assertFalse(self.successResultOf(self.policy.on_dvr(self.client, "f.flv")))
        self.assertEqual(self.http.urls(), ["http://h/dvr"])
        self.assertTrue(any("on_dvr failed" in m for (_l, _c, m) in self.events))

    def test_on_hls_body(self):
        d = self.policy.on_hls(
            self.client,
            file="./objs/nginx/html/live/livestream-3.ts",
            url="livestream-3.ts",
            m3u8="./objs/nginx/html/live/livestream.m3u8",
            m3u8_url="live/livestream.m3u8",
            seq_no=3,
            duration=9.966,
        )
        self.assertTrue(self.successResultOf(d))
        raw = self.http.requests[0][2]
        self.assertIn(b'"duration":9.97,', raw)  # SRS prints numbers with %.2f
        body = json.loads(raw)
        self.assertEqual(list(body.items()), [
            ("server_id", "vid-srv0001"), ("service_id", "svc12345"), ("action", "on_hls"),
            ("client_id", "cid00001"), ("ip", "192.168.1.10"), ("vhost", "__defaultVhost__"), ("app", "live"),
            ("tcUrl", "rtmp://127.0.0.1:1935/live"), ("stream", "livestream"), ("param", "?token=abc"),
            ("duration", 9.97), ("cwd", "/srs"), ("file", "./objs/nginx/html/live/livestream-3.ts"),
            ("url", "live/livestream-3.ts"), ("m3u8", "./objs/nginx/html/live/livestream.m3u8"),
            ("m3u8_url", "live/livestream.m3u8"), ("seq_no", 3), ("stream_url", "/live/livestream"),
            ("stream_id", self.sid),
        ])

    def test_on_hls_url_prefix_rules(self):
        cases = [
            ("s-1.ts", "live/s.m3u8", "live/s-1.ts"),
            ("s-1.ts", "s.m3u8", ".//s-1.ts"),  # srs_path_dirname gives './'
            ("s-1.ts", "/s.m3u8", "//s-1.ts"),
            ("http://cdn/x/s-1.ts", "live/s.m3u8", "http://cdn/x/s-1.ts"),
        ]
        for url, m3u8_url, expected in cases:
            self.http.requests.clear()
            self.successResultOf(self.policy.on_hls(self.client, "f", url, "m", m3u8_url, 1, 2.0))
            self.assertEqual(json.loads(self.http.requests[0][2])["url"], expected, (url, m3u8_url))

    def test_on_hls_notify_get_with_substitutions(self):
        self.http.replies["http://cdn/vid-srv0001/svc12345/live/livestream/livestream-3.ts?token=abc"] = (404, b"x" * 10)
        answered = self.successResultOf(self.policy.on_hls_notify(self.client, "livestream-3.ts"))
        self.assertEqual(answered, 1)  # the status does not matter
        method, url, data, limit, truncate = self.http.requests[0]
        self.assertEqual((method, url, data, limit, truncate),
                         (b"GET", "http://cdn/vid-srv0001/svc12345/live/livestream/livestream-3.ts?token=abc", None, 32, True))

    def test_on_hls_notify_absolute_ts_url_is_the_url(self):
        self.successResultOf(self.policy.on_hls_notify(self.client, "http://edge/live/s-1.ts"))
        self.assertEqual(self.http.urls(), ["http://edge/live/s-1.ts"])

    def test_on_hls_notify_times_out_after_10s_and_never_fails(self):
        self.http.timeout = 30
        self.http.replies["http://cdn/vid-srv0001/svc12345/live/livestream/a.ts?token=abc"] = None
        d = self.policy.on_hls_notify(self.client, "a.ts")
        self.ctx.clock.advance(9.9)
        self.assertNoResult(d)
        self.ctx.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), 0)

    def test_on_forward(self):
        self.http.replies["http://h/forward"] = (
            200, b'{"code":0,"data":{"urls":["rtmp://a/live/s","",7,"rtmp://b/live/s?k=1"]}}')
        urls = self.successResultOf(self.policy.on_forward(self.client))
        self.assertEqual(urls, ["rtmp://a/live/s", "rtmp://b/live/s?k=1"])
        raw = self.http.requests[0][2]
        self.assertEqual(list(json.loads(raw).items()), [
            ("action", "on_forward"), ("server_id", "vid-srv0001"), ("service_id", "svc12345"),
            ("client_id", "cid00001"), ("ip", "192.168.1.10"), ("vhost", "__defaultVhost__"), ("app", "live"),
            ("tcUrl", "rtmp://127.0.0.1:1935/live"), ("stream", "livestream"), ("param", "?token=abc"),
        ])

    def test_on_forward_failures(self):
        for reply in [(200, b'{"code":1}'), (200, b"0"), (200, b'{"code":0}'), (200, b'{"code":0,"data":{}}'),
                      (500, b"")]:
            self.http.replies["http://h/forward"] = reply
            self.failureResultOf(self.policy.on_forward(self.client), Denied)

    def test_on_forward_without_backend(self):
        ctx = make_ctx("vhost __defaultVhost__ {}")
        self.assertEqual(self.successResultOf(HooksPolicy(ctx, self.http).on_forward(make_client(ctx))), [])
        self.assertEqual(self.http.requests, [])

    def test_hook_body_is_public(self):
        body = hook_body(self.ctx, "on_close", self.client)
        self.assertEqual(body["send_bytes"], 5678)
        self.assertEqual(hook_body(self.ctx, "on_play", self.client, cid="x")["client_id"], "x")
