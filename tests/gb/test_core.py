"""Tests for srs_twisted.gb.core: the GB28181 SIP server state machine, time passed in."""

import random

from twisted.trial import unittest

from srs_twisted.codec.sip import SipMessage, parse_datagram
from srs_twisted.gb.core import CallEnded, Gone, Invited, Send, SipServer, SipSettings, make_ssrc

DEV = "34020000001320000001"


def request(method, cseq, call_id="c1", expires=None, body=b"", branch=None, to_tag=""):
    m = SipMessage(method=method, uri="sip:34020000002000000001@3402000000")
    m.add("Via", "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=%s" % (branch or "z9hG4bK%s%d" % (method, cseq)))
    m.add("From", "<sip:%s@3402000000>;tag=dev1" % DEV)
    m.add("To", "<sip:%s@3402000000>%s" % (DEV, ";tag=" + to_tag if to_tag else ""))
    m.add("Call-ID", call_id)
    m.add("CSeq", "%d %s" % (cseq, method))
    if expires is not None:
        m.add("Expires", str(expires))
    m.body = body
    return m


def response(invite, status):
    m = SipMessage(status=status)
    for name in ("Via", "From", "Call-ID", "CSeq"):
        m.add(name, invite.get(name))
    m.add("To", invite.get("To") + (";tag=cam9" if status > 100 else ""))
    return m


class CoreTests(unittest.TestCase):
    def setUp(self):
        self.server = SipServer(SipSettings(candidate="10.0.0.1", sip_port=5060, media_port=9000, timeout=60,
                                            reinvite=5), rng=random.Random(1))
        self.now = 100.0

    def sent(self):
        events = self.server.events()
        return [parse_datagram(e.data) for e in events if isinstance(e, Send)], [e for e in events if not isinstance(e, Send)]

    def register(self, expires=3600):
        self.server.receive("peer", request("REGISTER", 1, expires=expires), self.now, "UDP")
        return self.sent()

    def test_register_then_invite(self):
        (ok, invite), other = self.register()
        self.assertEqual((ok.status, ok.get("Expires"), ok.call_id, bool(ok.to_tag)), (200, "3600", "c1", True))
        self.assertEqual((invite.method, invite.uri), ("INVITE", "sip:%s@3402000000" % DEV))
        sdp = invite.body.decode()
        device = self.server.devices[DEV]
        self.assertIn("m=video 9000 RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n", sdp)
        self.assertIn("c=IN IP4 10.0.0.1\r\n", sdp)
        self.assertIn("y=%010d\r\n" % device.ssrc, sdp)
        self.assertTrue(str(device.ssrc).startswith("20000"))  # domain digits 4-8 of the server id
        self.assertEqual(invite.get("Subject"), "%s:%010d,34020000002000000001:0" % (DEV, device.ssrc))
        self.assertEqual(device.state, "Inviting")
        self.server.receive("peer", response(invite, 100), self.now)
        self.assertEqual(device.state, "Trying")
        self.server.receive("peer", response(invite, 200), self.now)
        (ack, query), events = self.sent()
        self.assertEqual((ack.method, ack.cseq[1], ack.call_id, ack.to_tag), ("ACK", "ACK", invite.call_id, "cam9"))
        self.assertEqual((query.method, query.get("Content-Type")), ("MESSAGE", "Application/MANSCDP+xml"))
        self.assertIn(b"<CmdType>DeviceInfo</CmdType>", query.body)
        self.assertNotEqual(query.call_id, invite.call_id)
        # the device's answer (a MESSAGE) is kept for the API
        info = b"<Response><CmdType>DeviceInfo</CmdType><Manufacturer>Hik</Manufacturer><Model>DS-2</Model></Response>"
        self.server.receive("peer", request("MESSAGE", 30, call_id="di", body=info), self.now)
        self.assertEqual(self.server.devices[DEV].info, {"manufacturer": "Hik", "model": "DS-2"})
        self.sent()
        self.assertEqual((device.state, events), ("Stable", [Invited(device)]))
        # a retransmitted 200 OK (our ACK was lost) is ACKed again, with no second Invited
        self.server.receive("peer", response(invite, 200), self.now)
        (ack2,), events = self.sent()
        self.assertEqual((ack2.method, events), ("ACK", []))

    def test_udp_invite_retransmitted_until_answered_then_timer_b(self):
        self.register()
        times = []
        for step in range(1, 65):
            self.server.poll(self.now + step * 0.5)
            sends, _ = self.sent()
            times += [step * 0.5 for m in sends if m.method == "INVITE"]
        self.assertEqual(times, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        device = self.server.devices[DEV]
        self.assertEqual((device.state, self.server.last_error), ("Registered", "INVITE of %s not answered in 32s" % DEV))
        self.assertIsNotNone(device.reinvite_at)
        self.server.poll(device.reinvite_at)
        (again,), _ = self.sent()
        self.assertEqual((again.method, device.state), ("INVITE", "Re-inviting"))

    def test_rejected_invite_is_acked(self):
        (_, invite), _ = self.register()
        self.server.receive("peer", response(invite, 486), self.now)
        (ack,), _ = self.sent()
        self.assertEqual((ack.method, self.server.devices[DEV].state), ("ACK", "Registered"))

    def test_retransmitted_register_gets_the_same_answer(self):
        (ok, _), _ = self.register()
        self.server.receive("peer", request("REGISTER", 1, expires=3600), self.now + 1, "UDP")
        (ok2,), _ = self.sent()
        self.assertEqual(ok2.to_bytes(), ok.to_bytes())

    def test_keepalive_and_timeout(self):
        self.register()
        body = b"<Notify><CmdType>Keepalive</CmdType><Status>OK</Status></Notify>"
        for i in range(1, 4):
            self.server.receive("peer", request("MESSAGE", 10 + i, call_id="k%d" % i, body=body), self.now + 50 * i)
            (ok,), _ = self.sent()
            self.assertEqual(ok.status, 200)
        self.server.poll(self.now + 150 + 59)
        self.assertEqual(self.sent(), ([], []))
        self.server.poll(self.now + 150 + 60)
        _, (gone,) = self.sent()
        self.assertEqual((type(gone), gone.reason), (Gone, "no REGISTER or keepalive for 60s"))
        self.assertEqual(self.server.devices, {})

    def test_message_before_register_is_forbidden(self):
        self.server.receive("peer", request("MESSAGE", 2, body=b"<Notify/>"), self.now)
        (r,), _ = self.sent()
        self.assertEqual(r.status, 403)

    def test_unregister_ends_the_device(self):
        self.register()
        self.sent()
        self.server.receive("peer", request("REGISTER", 2, expires=0), self.now)
        (ok,), (gone,) = self.sent()
        self.assertEqual((ok.status, gone.reason), (200, "unregistered (Expires: 0)"))

    def test_bye_from_device_then_register_reinvites(self):
        (_, invite), _ = self.register()
        self.server.receive("peer", response(invite, 200), self.now)
        self.sent()
        self.server.receive("peer", request("BYE", 5, call_id=invite.call_id, to_tag="x"), self.now)
        (ok,), (ended,) = self.sent()
        self.assertEqual((ok.status, type(ended), self.server.devices[DEV].state), (200, CallEnded, "Bye"))
        self.server.poll(self.now + 30)
        self.assertEqual(self.sent(), ([], []))  # no re-invite after a BYE
        self.server.receive("peer", request("REGISTER", 6, expires=3600, call_id="c2"), self.now + 31, "UDP")
        (_, invite2), _ = self.sent()
        self.assertEqual(invite2.method, "INVITE")

    def test_media_stops_bye_and_reinvite(self):
        (_, invite), _ = self.register()
        self.server.receive("peer", response(invite, 200), self.now)
        self.sent()
        device = self.server.devices[DEV]
        self.server.media_started(DEV)
        self.server.media_stopped(DEV, self.now + 10)
        (bye,), _ = self.sent()
        self.assertEqual((bye.method, bye.call_id, bye.to_tag), ("BYE", invite.call_id, "cam9"))
        self.server.poll(self.now + 14)
        self.assertEqual(self.sent(), ([], []))
        self.server.poll(self.now + 15)
        (again,), _ = self.sent()
        self.assertEqual((again.method, device.state), ("INVITE", "Re-inviting"))
        self.assertIn(b"y=%010d" % device.ssrc, again.body)

    def test_registration_limit(self):
        self.server.settings.max_devices = 3
        for i in range(5):
            m = request("REGISTER", 1, call_id="r%d" % i)
            m.set("From", "<sip:3402000000132000%04d@3402000000>;tag=t" % i)
            self.server.receive(("h", i), m, self.now)
        statuses = [m.status for m in self.sent()[0] if not m.is_request]
        self.assertEqual(statuses, [200, 200, 200, 503, 503])
        self.assertEqual(len(self.server.devices), 3)

    def test_remove_says_bye(self):
        (_, invite), _ = self.register()
        self.server.receive("peer", response(invite, 200), self.now)
        self.sent()
        self.assertTrue(self.server.remove(DEV, "kicked"))
        (bye,), (gone,) = self.sent()
        self.assertEqual((bye.method, gone.reason), ("BYE", "kicked"))
        self.assertFalse(self.server.remove(DEV, "kicked"))

    def test_make_ssrc_unique(self):
        rng = random.Random(2)
        taken = set()
        for _ in range(200):
            taken.add(make_ssrc("34020000002000000001", taken, rng))
        self.assertEqual(len(taken), 200)
        self.assertEqual(make_ssrc("short", set(), random.Random(0)) // 10000, 0)

    def test_expiry_of_a_device_in_a_call_says_bye(self):
        (_, invite), _ = self.register()
        self.server.receive("peer", response(invite, 200), self.now)
        self.sent()
        self.server.poll(self.now + 60)
        (bye,), (gone,) = self.sent()
        self.assertEqual((bye.method, bye.call_id, type(gone)), ("BYE", invite.call_id, Gone))

    def test_register_from_a_new_peer(self):
        (_, invite), _ = self.register()
        # while inviting: the INVITE went to the old peer, so the device is invited again
        self.server.receive("peer2", request("REGISTER", 2, expires=3600), self.now, "UDP")
        sends, _ = self.sent()
        self.assertEqual([m.method or m.status for m in sends], [200, "INVITE"])
        self.server.receive("peer2", response(sends[1], 200), self.now)
        self.sent()
        # a stable call survives a refresh from a new connection of the same transport...
        self.server.receive("peer3", request("REGISTER", 3, expires=3600), self.now, "UDP")
        sends, _ = self.sent()
        self.assertEqual([m.status for m in sends], [200])
        self.assertEqual(self.server.devices[DEV].peer, "peer3")
        # ...not a change of transport
        self.server.receive("peer4", request("REGISTER", 4, expires=3600), self.now, "TCP")
        sends, _ = self.sent()
        self.assertEqual([m.method or m.status for m in sends], [200, "INVITE"])
        self.assertIn(b"TCP/RTP/AVP", sends[1].body)
