"""The GB28181 caster without sockets: GbCaster on a fake clock, SIP datagrams in and out, RTP
of PS into the live source, the media idle -> BYE -> re-INVITE cycle, the end of a publish,
the external-SIP session."""

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted.codec.sip import SipMessage, parse_datagram
from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.gb.service import GbCaster
from srs_twisted.gb.session import MEDIA_IDLE

from tests.gb.test_core import DEV, request, response
from tests.gb.test_media import camera

CONF = ("stream_caster { enabled on; caster gb28181; output rtmp://127.0.0.1/live/[stream]; listen 9000; "
        "sip { enabled %s; listen 5060; timeout 30; reinvite 3; candidate 10.0.0.1; } } vhost __defaultVhost__ { }")
CAM = ("10.0.0.5", 5060)
MEDIA = ("10.0.0.5", 30000)


class FakeUdp:
    def __init__(self):
        self.sent = []

    def write(self, data, addr):
        self.sent.append((parse_datagram(data), addr))


class Listening:
    """What ``clock.listenTCP``/``listenUDP`` return here."""

    def __init__(self, port):
        self.port = port

    def getHost(self):
        return self

    def stopListening(self):
        return None


class CasterTests(unittest.TestCase):
    sip = "on"

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(100)
        self.clock.listenTCP = lambda port, factory, interface="": Listening(port)
        self.clock.listenUDP = lambda port, proto, interface="": Listening(port)
        config = load_string(CONF % self.sip)
        self.ctx = ServerContext(config, self.clock)
        self.caster = GbCaster(self.ctx, config.stream_casters[0])
        self.udp = FakeUdp()
        self.caster._sip_udp.transport = self.udp
        self.caster.startService()
        self.addCleanup(self.caster.stopService)

    def sent(self, method=None):
        out, self.udp.sent = self.udp.sent, []
        return [m for m, _ in out if method is None or m.method == method]

    def invite(self) -> SipMessage:
        self.caster.sip_received(CAM, request("REGISTER", 1, expires=3600), self.clock.seconds(), "UDP")
        (invite,) = self.sent("INVITE")
        self.caster.sip_received(CAM, response(invite, 200), "UDP", "10.0.0.5:5060")
        self.assertEqual(self.sent("ACK")[0].call_id, invite.call_id)
        return invite

    def media(self, ssrc, frames=10, seq0=0, peer=MEDIA):
        for data in camera(frames, seq0=seq0):
            data = data[:8] + ssrc.to_bytes(4, "big") + data[12:]
            self.caster.media_received(peer, data, "udp", "%s:%d" % peer)

    def source(self, stream=DEV):
        return self.ctx.registry.get("__defaultVhost__", "live", stream)

    def live(self, stream=DEV) -> bool:
        source = self.source(stream)
        return source is not None and source.publisher is not None

    def test_media_publishes_then_idle_bye_reinvite_and_end(self):
        invite = self.invite()
        ssrc = int(invite.body.decode().split("y=")[1].split()[0])
        self.media(ssrc)
        self.assertTrue(self.live())
        self.assertEqual(self.caster.describe()[0]["codecs"], {"video": "h264", "audio": "aac"})
        self.clock.advance(MEDIA_IDLE + 0.5)  # no RTP: the media stopped
        (bye,) = self.sent("BYE")
        self.assertEqual(bye.call_id, invite.call_id)
        self.assertTrue(self.live())  # the publish waits for the re-invite
        self.clock.advance(3)
        (again,) = self.sent("INVITE")
        self.assertIn(b"y=%010d" % ssrc, again.body)
        self.caster.sip_received(CAM, response(again, 200), "UDP", "10.0.0.5:5060")
        self.media(ssrc, seq0=500, peer=("10.0.0.5", 30002))  # the same stream goes on
        self.assertTrue(self.live())
        # the device keeps registering but sends no media: after `timeout` the publish ends
        for _ in range(16):
            self.clock.advance(2)
            self.caster.sip_received(CAM, request("MESSAGE", 9, call_id="k%f" % self.clock.seconds(),
                                                  body=b"<Notify/>"), "UDP", "10.0.0.5:5060")
        self.assertFalse(self.live())
        self.assertNotIn(DEV, self.caster.by_device)

    def test_unknown_ssrc_and_foreign_peer_are_dropped(self):
        invite = self.invite()
        ssrc = int(invite.body.decode().split("y=")[1].split()[0])
        self.assertFalse(self.caster.media_received(MEDIA, camera(1)[0], "udp", "x"))  # SSRC 1234
        self.assertEqual(self.caster.unknown_ssrc, 1)
        self.media(ssrc, frames=2)
        self.assertFalse(self.caster.media_received(("6.6.6.6", 1), camera(1)[0][:8] + ssrc.to_bytes(4, "big")
                                                    + camera(1)[0][12:], "udp", "6.6.6.6:1"))
        self.assertEqual(self.caster.by_device[DEV].foreign, 1)

    def test_stop_says_bye_and_ends_the_publish(self):
        invite = self.invite()
        self.media(int(invite.body.decode().split("y=")[1].split()[0]))
        self.sent()
        self.caster.stopService()
        (bye,) = self.sent("BYE")
        self.assertEqual(bye.call_id, invite.call_id)
        self.assertFalse(self.live())

    def test_unregister_ends_the_publish(self):
        invite = self.invite()
        self.media(int(invite.body.decode().split("y=")[1].split()[0]))
        self.assertTrue(self.live())
        self.caster.sip_received(CAM, request("REGISTER", 5, expires=0), "UDP", "10.0.0.5:5060")
        self.assertFalse(self.live())
        self.assertEqual(self.caster.describe(), [])


class ExternalTests(CasterTests):
    sip = "off"

    def test_media_publishes_then_idle_bye_reinvite_and_end(self):
        self.assertEqual(self.caster.external_publish("cam1", 42), (0, 9000))
        self.assertEqual(self.caster.external_publish("cam1", 43), (1028, 0))
        self.assertEqual(self.caster.external_publish("cam2", 42), (1028, 0))
        for bad in ("a/b", "../x", "x?y=1", "", "sp ace"):
            self.assertEqual(self.caster.external_publish(bad, 44), (3008, 0), bad)
        self.media(42)
        self.assertTrue(self.live("cam1"))
        self.assertEqual(self.caster.describe()[0]["sip_state"], "External")
        self.clock.advance(31)
        self.assertFalse(self.live("cam1"))
        self.assertEqual((self.caster.describe(), self.caster.device_logs), ([], {}))

    def test_unknown_ssrc_and_foreign_peer_are_dropped(self):
        self.assertFalse(self.caster.media_received(MEDIA, camera(1)[0], "udp", "x"))

    def test_unregister_ends_the_publish(self):
        self.assertEqual(self.caster.port_of("sip"), 0)

    def test_stop_says_bye_and_ends_the_publish(self):
        self.caster.external_publish("cam1", 42)
        self.media(42)
        self.caster.stopService()
        self.assertFalse(self.live("cam1"))
