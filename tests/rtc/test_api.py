"""The WHIP/WHEP session resource (rtc/api.py): its Location and the DELETE on it."""

from __future__ import annotations

from types import SimpleNamespace

from twisted.trial import unittest
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel

from srs_twisted.rtc.api import RtcApi, delete_location, session_id

# Chromium's ICE ufrags are 4 ice-chars, which include "+" and "/".
SESSION = "k2x9ab7q:k+oD"
TOKEN = "6200b0021bb4b9ae32e2940b314cea8a"


class FakeServer:
    def __init__(self):
        self.entry = SimpleNamespace(token=TOKEN, peer=object())
        self.ended = []

    def find(self, username):
        return self.entry if username == SESSION else None

    def end(self, peer, reason):
        self.ended.append((peer, reason))


class CapturedRequest(Request):
    """A real twisted.web Request that, once parsed (its query decoded as the
    server decodes it), is kept instead of dispatched to a site."""

    def process(self):
        pass


def request_for(method: bytes, uri: str) -> Request:
    request = CapturedRequest(DummyChannel(), False)
    request.gotLength(0)
    request.requestReceived(method, uri.encode(), b"HTTP/1.1")
    return request


class DeleteTests(unittest.TestCase):
    def setUp(self):
        self.server = FakeServer()
        self.api = RtcApi(SimpleNamespace(ctx=SimpleNamespace(rtc=self.server)))

    def delete(self, uri: str):
        request = request_for(b"DELETE", uri)
        body = self.api.render(request, request.path.decode())
        return request.code, body

    def test_the_location_of_a_session_whose_ufrag_has_a_plus_deletes_it(self):
        location = delete_location("whep", TOKEN, "live", "cam", SESSION)
        self.assertEqual(location, f"/rtc/v1/whep/?action=delete&token={TOKEN}&app=live&stream=cam"
                                   "&session=k2x9ab7q:k%2BoD")
        self.assertEqual(self.delete(location), (200, b""))
        self.assertEqual([reason for _, reason in self.server.ended], ["DELETE by the client"])

    def test_an_unencoded_plus_from_a_client_still_finds_the_session(self):
        uri = f"/rtc/v1/whip/?action=delete&token={TOKEN}&app=live&stream=cam&session={SESSION}"
        self.assertEqual(self.delete(uri)[0], 200)
        self.assertEqual(session_id({"session": "k2x9ab7q:k oD"}), SESSION)

    def test_a_wrong_token_is_5036_and_an_unknown_session_200_as_srs(self):
        for uri in (f"/rtc/v1/whip/?action=delete&token=bad&session={SESSION}",
                    f"/rtc/v1/whip/?action=delete&session={SESSION}"):
            self.assertEqual(self.delete(uri), (400, b"5036: RtcInvalidSession"))
        self.assertEqual(self.delete(f"/rtc/v1/whip/?action=delete&token={TOKEN}&session=k2x9ab7q:other"),
                         (200, b""))  # SRS expires nothing and answers 200
        self.assertEqual(self.server.ended, [])

    def test_app_and_stream_are_encoded(self):
        location = delete_location("whip", TOKEN, "a&b", "s=1 x", SESSION)
        self.assertIn("&app=a%26b&stream=s%3D1%20x&", location)
