"""The WebRTC API's errors as SRS 7 answers them (srs_app_rtc_api.cpp, SRS 7.0.121 #4562), with
the real server inside the tests' private network namespace and captured offers (no media):

* WHIP/WHEP: ``text/plain`` ``<code>: <name>``, HTTP 400 for a bad request (5043 no SDP,
  5012 SDP decode, 5018 negotiation, 5037 ICE credentials, 5036 DELETE token), 401 when
  security rules or a hook refuse (1102), 409 for a busy stream (1028), 500 otherwise
  (5021 RTC disabled);
* the legacy ``/rtc/v1/publish/`` and ``/play/``: HTTP 200 ``{"code": 400}`` for any error;
* the reason is in the server's log."""

from __future__ import annotations

import json

from twisted.trial import unittest

from tests.codec.sdp_fixtures import AIORTC_OFFER, FFMPEG_WHIP_OFFER
from tests.integration import harness as h
from tests.integration import netns
from tests.integration.test_rtc_plain import api_request

PLAY_OFFER = AIORTC_OFFER.replace("a=sendonly", "a=recvonly")


class RtcApiErrors(unittest.TestCase):
    def setUp(self):
        netns.enter()
        self.api_port = h.free_port()
        closed = h.free_port()  # nothing listens there: the hook fails
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{h.free_port()}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
            "vhost locked { rtc { enabled on; } security { enabled on; deny publish all; deny play all; } }\n"
            f"vhost hooked {{ rtc {{ enabled on; }} http_hooks {{ enabled on; "
            f"on_publish http://127.0.0.1:{closed}/refuse; on_play http://127.0.0.1:{closed}/refuse; }} }}\n"
            "vhost plain { }\n"
        )
        self.addCleanup(self.srv.stop)

    def request(self, method, path, body=None):
        return api_request(self.api_port, method, path, body)

    def assert_whip_error(self, reply, status, text):
        self.assertEqual((reply.status, reply.body), (status, text.encode()), reply.body)
        self.assertEqual(reply.headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(reply.headers["content-length"], str(len(text)))
        self.assertEqual(reply.headers["connection"], "close")

    def test_bad_requests_are_400_with_srs_code_and_name(self):
        whip = "/rtc/v1/whip/?app=live&stream=s"
        self.assert_whip_error(self.request("POST", whip, ""), 400, "5043: RtcInvalidSdp")
        self.assert_whip_error(self.request("GET", whip), 400, "5043: RtcInvalidSdp")  # a browser's GET
        self.assert_whip_error(self.request("POST", whip, "invalidsdp"), 400, "5012: RtcSdpDecode")
        no_media = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"  # SRS's 'v=0' example (ours must be whole)
        self.assert_whip_error(self.request("POST", whip, no_media), 400, "5018: RtcSdpNegotiate")
        self.assert_whip_error(self.request("POST", "/rtc/v1/whep/?app=live&stream=s", FFMPEG_WHIP_OFFER),
                               400, "5018: RtcSdpNegotiate")  # sendonly offered to play
        self.assert_whip_error(self.request("POST", whip + "&ice-ufrag=abc", FFMPEG_WHIP_OFFER),
                               400, "5037: RtcInvalidIce")
        self.assert_whip_error(self.request("POST", whip + "&ice-pwd=" + "p" * 33, FFMPEG_WHIP_OFFER),
                               400, "5037: RtcInvalidIce")
        self.assert_whip_error(self.request("POST", whip + "&codec=hevc", FFMPEG_WHIP_OFFER),
                               400, "5018: RtcSdpNegotiate")
        self.srv.wait_log(r"code 5043: no SDP offer")
        self.srv.wait_log(r"code 5037: invalid ice-ufrag 'abc'")
        # the SDP is checked before the vhost, as in SRS
        self.assert_whip_error(self.request("POST", "/rtc/v1/whip/?app=live&stream=s&vhost=plain", "x"),
                               400, "5012: RtcSdpDecode")
        self.assertEqual(self.srv.unexpected_errors(), "")

    def test_policy_refusals_are_401_busy_409_disabled_500(self):
        for route, offer in (("whip", FFMPEG_WHIP_OFFER), ("whep", PLAY_OFFER)):
            for vhost, reason in (("locked", "security: 127.0.0.1 denied by rule"), ("hooked", "http: on_")):
                reply = self.request("POST", f"/rtc/v1/{route}/?app=live&stream={route}&vhost={vhost}", offer)
                self.assert_whip_error(reply, 401, "1102: SystemAuth")
                self.srv.wait_log(r"code 1102: (publish|play) denied: " + reason)
        self.assert_whip_error(self.request("POST", "/rtc/v1/whip/?app=live&stream=s&vhost=plain", FFMPEG_WHIP_OFFER),
                               500, "5021: RtcDisabled")
        first = self.request("POST", "/rtc/v1/whip/?app=live&stream=busy", FFMPEG_WHIP_OFFER)
        self.assertEqual(first.status, 201, first.body)
        self.assert_whip_error(self.request("POST", "/rtc/v1/whip/?app=live&stream=busy", FFMPEG_WHIP_OFFER),
                               409, "1028: StreamBusy")
        self.assertEqual(self.srv.unexpected_errors(), "")

    def test_delete_as_srs(self):
        created = self.request("POST", "/rtc/v1/whip/?app=live&stream=d", FFMPEG_WHIP_OFFER)
        self.assertEqual(created.status, 201, created.body)
        location = created.headers["location"]
        session = location.rsplit("session=", 1)[1]
        self.assert_whip_error(self.request("DELETE", f"/rtc/v1/whip/?app=live&stream=d&session={session}"),
                               400, "5036: RtcInvalidSession")  # no token
        self.assert_whip_error(self.request("DELETE", f"/rtc/v1/whip/?session={session}&token=wrong"),
                               400, "5036: RtcInvalidSession")
        busy = self.request("POST", "/rtc/v1/whip/?app=live&stream=d", FFMPEG_WHIP_OFFER)
        self.assertEqual(busy.status, 409)  # the session is still there
        unknown = self.request("DELETE", "/rtc/v1/whip/?session=nosuch:session&token=t")
        self.assertEqual((unknown.status, unknown.body), (200, b""))  # SRS: nothing to end
        done = self.request("DELETE", location)
        self.assertEqual((done.status, done.body), (200, b""))
        self.srv.wait_log(r"RTC session __defaultVhost__/live/d ended: DELETE by the client")
        again = self.request("POST", "/rtc/v1/whip/?app=live&stream=d", FFMPEG_WHIP_OFFER)
        self.assertEqual(again.status, 201, again.body)

    def test_legacy_json_answers_code_400_for_any_error(self):
        def legacy(route, body, query=""):
            reply = self.request("POST", f"/rtc/v1/{route}/{query}", body)
            self.assertEqual(reply.status, 200)
            self.assertEqual(reply.headers["content-type"], "application/json")
            return json.loads(reply.body)

        url = "webrtc://127.0.0.1/live/j"
        self.assertEqual(legacy("publish", "{"), {"code": 400})
        self.assertEqual(legacy("publish", json.dumps({"sdp": "x", "streamurl": url})), {"code": 400})
        self.assertEqual(legacy("publish", json.dumps({"sdp": FFMPEG_WHIP_OFFER,
                                                       "streamurl": url + "?vhost=locked"})), {"code": 400})
        self.assertEqual(legacy("play", json.dumps({"sdp": PLAY_OFFER, "streamurl": url + "?vhost=plain"})),
                         {"code": 400})
        self.assertEqual(self.request("GET", "/rtc/v1/play/").status, 200)  # no body: {"code": 400} too
        ok = legacy("publish", json.dumps({"sdp": FFMPEG_WHIP_OFFER, "streamurl": url}))
        self.assertEqual(ok["code"], 0, ok)
        self.assertEqual(legacy("publish", json.dumps({"sdp": FFMPEG_WHIP_OFFER, "streamurl": url})),
                         {"code": 400})  # busy
        self.srv.wait_log(r"/rtc/v1/publish/: code 1028: ")
        self.srv.wait_log(r"/rtc/v1/publish/: code 5019: ")
        self.srv.wait_log(r"/rtc/v1/publish/: code 1102: ")
        self.srv.wait_log(r"/rtc/v1/play/: code 5021: ")
        reply = self.request("POST", "/rtc/v1/play/?callback=cb", "{")  # JSONP as the rest of the API
        self.assertEqual(reply.body, b'cb({"code":400})')
