"""HTTP hooks for WebRTC sessions (WHIP on_publish/on_unpublish, WHEP on_play/on_stop)
with SRS's bodies, and a refusing hook refusing the session; captured offers, the
real server, a hook receiver in this test process (served by the trial reactor)."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from tests.codec.sdp_fixtures import AIORTC_OFFER, FFMPEG_WHIP_OFFER
from tests.policy.receiver import start_receiver

from . import harness as h
from . import netns
from .receiver import HOOK_KEYS as KEYS

ACTIONS = ("on_publish", "on_unpublish", "on_play", "on_stop")


class RtcHooksTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        netns.enter()
        self.receiver, base = start_receiver(self)
        hooks = "".join(f"{a} {base}/api/v1/hooks/{a}; " for a in ACTIONS)
        self.api_port = h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{h.free_port()}; candidate 127.0.0.1; }}\n"
            f"vhost __defaultVhost__ {{ rtc {{ enabled on; }} http_hooks {{ enabled on; {hooks}}} }}\n"
        )
        self.addCleanup(self.srv.stop)

    @defer.inlineCallbacks
    def call(self, method, path, body=b""):
        import treq

        url = f"http://127.0.0.1:{self.api_port}{path}"
        response = yield treq.request(method, url, data=body or None, persistent=False, timeout=30)
        content = yield response.content()
        return response, content

    def until(self, predicate, what):
        return self.receiver.wait_for(predicate, 30, what)

    def check_body(self, body, action, param):
        self.assertEqual(list(body), KEYS[action], action)
        self.assertEqual((body["action"], body["ip"], body["vhost"], body["app"], body["stream"]),
                         (action, "127.0.0.1", "__defaultVhost__", "live", "h"))
        self.assertEqual((body["tcUrl"], body["param"], body["stream_url"]),
                         ("webrtc://127.0.0.1/live", param, "/live/h"))
        self.assertTrue(body["stream_id"] and body["client_id"])

    @defer.inlineCallbacks
    def test_whip_and_whep_sessions_send_srs_hook_bodies(self):
        r, answer = yield self.call("POST", "/rtc/v1/whip/?app=live&stream=h&token=abc", FFMPEG_WHIP_OFFER.encode())
        self.assertEqual(r.code, 201, answer)
        publish_location = r.headers.getRawHeaders(b"location")[0].decode()
        r, answer = yield self.call("POST", "/rtc/v1/whep/?app=live&stream=h",
                                    AIORTC_OFFER.replace("a=sendonly", "a=recvonly").encode())
        self.assertEqual(r.code, 201, answer)
        play_location = r.headers.getRawHeaders(b"location")[0].decode()
        self.assertTrue(play_location.startswith("/rtc/v1/whep/?action=delete&token="), play_location)
        r, _ = yield self.call("DELETE", play_location)
        self.assertEqual(r.code, 200)
        r, _ = yield self.call("DELETE", publish_location)
        self.assertEqual(r.code, 200)
        yield self.until(lambda: all(self.receiver.bodies(a) for a in ACTIONS), "every hook")
        (publish,), (unpublish,) = self.receiver.bodies("on_publish"), self.receiver.bodies("on_unpublish")
        (play,), (stop,) = self.receiver.bodies("on_play"), self.receiver.bodies("on_stop")
        self.check_body(publish, "on_publish", "?token=abc")
        self.check_body(unpublish, "on_unpublish", "?token=abc")
        self.check_body(play, "on_play", "")
        self.check_body(stop, "on_stop", "")
        self.assertEqual(publish["client_id"], unpublish["client_id"])
        self.assertEqual(play["client_id"], stop["client_id"])
        self.assertNotEqual(publish["client_id"], play["client_id"])

    @defer.inlineCallbacks
    def test_a_refusing_on_publish_refuses_the_whip_session(self):
        self.receiver.replies["on_publish"] = (200, b'{"code":1}')
        r, body = yield self.call("POST", "/rtc/v1/whip/?app=live&stream=h", FFMPEG_WHIP_OFFER.encode())
        self.assertEqual((r.code, body), (401, b"1102: SystemAuth"), body)  # SRS 7's status and body
        self.receiver.replies.pop("on_publish")
        r, body = yield self.call("POST", "/rtc/v1/whip/?app=live&stream=h", FFMPEG_WHIP_OFFER.encode())
        self.assertEqual(r.code, 201, body)  # the refused session left nothing behind
