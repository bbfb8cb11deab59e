"""ICE-lite sessions and the one-port demultiplexer (srs_twisted/rtc/session.py)."""

import random

from twisted.trial import unittest

from srs_twisted.codec import stun

from .. import optional
from srs_twisted.rtc.session import (
    COUNTERS, AddressChanged, DtlsIn, RtcpIn, RtpIn, Send, SessionError, SessionTable,
    SessionTimeout)

try:
    from aioice import stun as aioice_stun
except ImportError:  # test-only dependency (comes with aiortc)
    aioice_stun = None

UFRAG, PWD = "srvufrag", "s" * 32
PEER_UFRAG, PEER_PWD = "peer", "p" * 22
A = ("10.99.0.2", 50000)
B = ("10.99.0.2", 50001)
C = ("192.0.2.9", 40000)
RTP = bytes([0x80, 111]) + bytes(10) + b"payload"
RTCP = bytes([0x81, 201, 0, 1]) + bytes(4)
DTLS = bytes([22, 0xFE, 0xFD]) + bytes(10)


def check(username=UFRAG + ":" + PEER_UFRAG, pwd=PWD, use_candidate=False, controlled=None,
          tid=None):
    return stun.binding_request(username, pwd, priority=1853824767, controlling=None
                                if controlled is not None else 7, controlled=controlled,
                                use_candidate=use_candidate, transaction_id=tid)


class Base(unittest.TestCase):
    def setUp(self):
        self.table = SessionTable(max_sessions=4, max_addresses=3)
        self.session = self.table.add(UFRAG, PWD, PEER_UFRAG, now=100.0, stun_timeout=30)

    def feed(self, data, addr, now=101.0):
        return self.table.receive_datagram(data, addr, now)


class StunCheckTests(Base):
    def test_valid_check_is_answered_and_binds(self):
        tid = b"T" * 12
        events = self.feed(check(tid=tid, use_candidate=True), A)
        send, changed = events
        self.assertIsInstance(send, Send)
        self.assertEqual(send.addr, A)
        response = stun.parse(send.data)
        self.assertEqual((response.method, response.msg_class, response.transaction_id),
                         (stun.BINDING, stun.SUCCESS, tid))
        self.assertEqual(response.xor_mapped_address, A)
        self.assertTrue(stun.integrity_ok(response, PWD))
        self.assertTrue(stun.fingerprint_ok(response))
        self.assertEqual(changed, AddressChanged(self.session, A, None))
        self.assertEqual(self.session.address, A)
        self.assertIs(self.table.by_address(A), self.session)
        self.assertEqual(self.session.last_seen, 101.0)
        self.assertEqual(self.table.stats["stun_checks"], 1)
        # A repeated check answers again and changes nothing else.
        again = self.feed(check(use_candidate=True), A, now=105.0)
        self.assertEqual([type(e) for e in again], [Send])
        self.assertEqual(self.session.last_seen, 105.0)

    def test_invalid_checks_are_dropped_unanswered(self):
        cases = {
            "wrong password": check(pwd="x" * 32),
            "unknown ufrag": check(username="nobody:" + PEER_UFRAG),
            "wrong peer ufrag": check(username=UFRAG + ":other"),
            "no colon": check(username=UFRAG),
            "no fingerprint": stun.StunMessage(attributes=[(stun.USERNAME, UFRAG + ":" + PEER_UFRAG)])
            .encode(PWD),
            "no integrity": stun.StunMessage(attributes=[(stun.USERNAME, UFRAG + ":" + PEER_UFRAG)])
            .encode(fingerprint=True),
            "no username": stun.StunMessage().encode(PWD, fingerprint=True),
        }
        for name, data in cases.items():
            self.assertEqual(self.feed(data, A), [], name)
        self.assertIsNone(self.session.address)
        self.assertEqual(self.table.address_count, 0)
        self.assertEqual(self.session.last_seen, 100.0)
        self.assertEqual(self.table.stats["stun_unknown_ufrag"], 1)
        self.assertEqual(self.table.stats["stun_rejected"], 6)
        self.assertEqual(self.table.stats["stun_checks"], 0)

    def test_corrupted_check_is_rejected(self):
        data = bytearray(check())
        data[45] ^= 0x01   # inside PRIORITY: integrity no longer matches
        self.assertEqual(self.feed(bytes(data), A), [])
        self.assertEqual(self.table.stats["stun_rejected"], 1)

    def test_fingerprint_optional_when_not_required(self):
        table = SessionTable(require_fingerprint=False)
        table.add(UFRAG, PWD, PEER_UFRAG, now=0)
        no_fp = stun.StunMessage(attributes=[(stun.USERNAME, UFRAG + ":" + PEER_UFRAG)]).encode(PWD)
        self.assertEqual(len(table.receive_datagram(no_fp, A, 1)), 2)

    def test_strict_check_refuses_ice_controlled(self):
        strict = self.table.add("strict01", PWD, PEER_UFRAG, now=100.0, strict_check=True)
        data = check(username="strict01:" + PEER_UFRAG, controlled=9)
        self.assertEqual(self.feed(data, A), [])
        self.assertIsNone(strict.address)
        # Without strict_check SRS accepts it.
        self.assertEqual(len(self.feed(check(controlled=9), A)), 2)

    def test_other_stun_is_ignored(self):
        response = stun.StunMessage(stun.BINDING, stun.SUCCESS).encode(PWD, fingerprint=True)
        other_method = stun.StunMessage(0x003, stun.REQUEST).encode(PWD, fingerprint=True)
        for data in (response, other_method):
            self.assertEqual(self.feed(data, A), [])
        self.assertEqual(self.table.stats["stun_ignored"], 2)
        self.assertEqual(self.feed(b"\x00\x01\x00", A), [])
        self.assertEqual(self.table.stats["stun_malformed"], 1)

    def test_indication_is_a_keepalive_from_a_bound_address(self):
        indication = stun.StunMessage(stun.BINDING, stun.INDICATION).encode(fingerprint=True)
        self.assertEqual(self.feed(indication, A), [])
        self.assertEqual(self.table.stats["unknown_address"], 1)
        self.assertEqual(self.session.last_seen, 100.0)
        self.feed(check(), A)
        self.assertEqual(self.feed(indication, A, now=120.0), [])
        self.assertEqual(self.session.last_seen, 120.0)
        self.assertEqual(self.table.stats["keepalives"], 1)


class RoutingTests(Base):
    def test_media_from_a_bound_address_is_routed(self):
        self.feed(check(), A)
        self.assertEqual(self.feed(DTLS, A, now=102), [DtlsIn(self.session, DTLS)])
        self.assertEqual(self.feed(RTP, A, now=103), [RtpIn(self.session, RTP)])
        self.assertEqual(self.feed(RTCP, A, now=104), [RtcpIn(self.session, RTCP)])
        self.assertEqual(self.session.last_seen, 104)
        self.assertEqual((self.table.stats["dtls"], self.table.stats["rtp"],
                          self.table.stats["rtcp"]), (1, 1, 1))

    def test_unknown_addresses_are_dropped_and_allocate_nothing(self):
        self.feed(check(), A)
        for index, data in enumerate([DTLS, RTP, RTCP] * 100):
            self.assertEqual(self.feed(data, ("198.51.100.%d" % (index % 250), 1000 + index)), [])
        self.assertEqual(self.table.stats["unknown_address"], 300)
        self.assertEqual(self.table.address_count, 1)
        self.assertEqual(self.session.last_seen, 101.0)

    def test_unknown_first_byte(self):
        self.feed(check(), A)
        for first in (4, 19, 64, 127, 192, 255):
            self.assertEqual(self.feed(bytes([first]) + bytes(20), A), [])
        self.assertEqual(self.feed(b"", A), [])
        self.assertEqual(self.table.stats["unknown_kind"], 7)

    def test_memoryview_input(self):
        self.feed(memoryview(check()), A)
        self.assertEqual(self.session.address, A)


class AddressTests(Base):
    def test_follows_latest_check_until_nominated(self):
        self.feed(check(), A)
        self.assertEqual(self.feed(check(), B)[1], AddressChanged(self.session, B, A))
        self.assertEqual(self.session.address, B)
        # Nomination on A moves back and pins it.
        self.assertEqual(self.feed(check(use_candidate=True), A)[1],
                         AddressChanged(self.session, A, B))
        events = self.feed(check(), B)
        self.assertEqual([type(e) for e in events], [Send])
        self.assertEqual(self.session.address, A)
        # Media from B (checked) is still the session's.
        self.assertEqual(self.feed(RTP, B), [RtpIn(self.session, RTP)])
        # A nominating check from a new address (NAT rebinding) is followed.
        self.assertEqual(self.feed(check(use_candidate=True), C)[1],
                         AddressChanged(self.session, C, A))

    def test_unchecked_new_address_is_not_followed(self):
        self.feed(check(use_candidate=True), A)
        self.assertEqual(self.feed(RTP, C), [])
        self.assertEqual(self.feed(check(pwd="w" * 32, use_candidate=True), C), [])
        self.assertEqual(self.session.address, A)

    def test_addresses_are_bounded_per_session(self):
        self.feed(check(use_candidate=True), A)
        for port in range(60000, 60010):
            self.feed(check(), ("10.99.0.3", port))
        self.assertEqual(len(self.session.addresses), 3)
        self.assertEqual(self.table.address_count, 3)
        self.assertEqual(self.session.address, A)   # the selected one is never evicted
        self.assertIs(self.table.by_address(A), self.session)
        self.assertIsNone(self.table.by_address(("10.99.0.3", 60000)))

    def test_address_moves_to_the_session_that_checked_it(self):
        other = self.table.add("second01", PWD, PEER_UFRAG, now=100.0)
        self.feed(check(use_candidate=True), A)
        self.feed(check(), B)
        events = self.feed(check(username="second01:" + PEER_UFRAG), B)
        self.assertEqual(events[1:], [AddressChanged(other, B, None)])
        self.assertIs(self.table.by_address(B), other)
        self.assertEqual(self.session.addresses, [A])
        events = self.feed(check(username="second01:" + PEER_UFRAG, use_candidate=True), A)
        self.assertIn(AddressChanged(self.session, None, A), events)
        self.assertIsNone(self.session.address)
        self.assertEqual(other.address, A)


class LifecycleTests(Base):
    def test_timeout_after_silence(self):
        self.assertEqual(self.table.next_deadline(), 130.0)
        self.assertEqual(self.table.tick(129.9), [])
        self.feed(check(), A, now=120.0)
        self.assertEqual(self.table.tick(149.9), [])
        self.feed(RTP, A, now=140.0)
        self.assertEqual(self.table.next_deadline(), 170.0)
        self.assertEqual(self.table.tick(170.0), [SessionTimeout(self.session)])
        self.assertTrue(self.session.closed)
        self.assertEqual((len(self.table), self.table.address_count), (0, 0))
        self.assertEqual(self.feed(RTP, A, now=171), [])
        self.assertEqual(self.feed(check(), A, now=171), [])
        self.assertIsNone(self.table.next_deadline())
        self.assertEqual(self.table.stats["timeouts"], 1)

    def test_never_checked_session_times_out(self):
        self.assertEqual(self.table.tick(130.0), [SessionTimeout(self.session)])

    def test_per_session_timeouts(self):
        short = self.table.add("short001", PWD, PEER_UFRAG, now=100.0, stun_timeout=5)
        self.assertEqual(self.table.tick(105.0), [SessionTimeout(short)])
        self.assertIs(self.table.get(UFRAG), self.session)

    def test_remove_is_idempotent(self):
        self.feed(check(), A)
        self.table.remove(self.session)
        self.table.remove(self.session)
        self.assertEqual((len(self.table), self.table.address_count), (0, 0))

    def test_limits_and_bad_sessions(self):
        for index in range(3):
            self.table.add("more%04d" % index, PWD, PEER_UFRAG, now=0)
        with self.assertRaisesRegex(SessionError, "full"):
            self.table.add("toomany1", PWD, PEER_UFRAG, now=0)
        table = SessionTable()
        table.add(UFRAG, PWD, PEER_UFRAG, now=0)
        for args in ((UFRAG, PWD, PEER_UFRAG), ("", PWD, "x"), ("a:b", PWD, "x"), ("u", "", "x"),
                     ("u", PWD, "")):
            with self.assertRaises(SessionError):
                table.add(*args, now=0)
        with self.assertRaises(SessionError):
            table.add("u2", PWD, "x", now=0, stun_timeout=0)
        with self.assertRaises(ValueError):
            SessionTable(max_sessions=0)

    def test_unused_ufrag(self):
        made = iter([UFRAG, UFRAG, "fresh001"])
        self.assertEqual(self.table.unused_ufrag(lambda: next(made)), "fresh001")
        with self.assertRaises(SessionError):
            self.table.unused_ufrag(lambda: UFRAG)


class HostileInputTests(Base):
    def snapshot(self):
        return (len(self.table), self.table.address_count, list(self.session.addresses),
                self.session.address)

    def assert_counters_fixed(self):
        self.assertEqual(set(self.table.stats), set(COUNTERS))

    def test_random_datagrams(self):
        self.feed(check(use_candidate=True), A)
        before = self.snapshot()
        rng = random.Random(20)
        addresses = [A, B, C] + [("203.0.113.%d" % i, 9000 + i) for i in range(20)]
        for _ in range(5000):
            size = rng.choice([0, 1, 2, 19, 20, 21, 28, 64, 200, 1500])
            data = bytes(rng.getrandbits(8) for _ in range(size))
            addr = rng.choice(addresses)
            for event in self.feed(data, addr):
                self.assertIn(type(event), (DtlsIn, RtpIn, RtcpIn))
                self.assertEqual(addr, A)
        self.assertEqual(self.snapshot(), before)
        self.assert_counters_fixed()

    def test_stun_shaped_garbage(self):
        """Valid STUN headers with random bodies, and mutated real checks: never bound."""
        rng = random.Random(21)
        valid = check()
        for _ in range(3000):
            if rng.random() < 0.5:
                body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 20) * 4))
                data = bytes([0, 1]) + len(body).to_bytes(2, "big") + \
                    stun.MAGIC_COOKIE.to_bytes(4, "big") + bytes(12) + body
            else:
                data = bytearray(valid)
                for _ in range(rng.randint(1, 3)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                data = bytes(data[:rng.choice([len(data), rng.randrange(len(data))])])
            addr = ("203.0.113.%d" % rng.randrange(256), rng.randrange(1, 65536))
            self.assertEqual(self.feed(data, addr), [])
        self.assertEqual(self.table.address_count, 0)
        self.assertIsNone(self.session.address)
        self.assertEqual(self.table.stats["stun_checks"], 0)
        self.assert_counters_fixed()


class AioiceCrossCheckTests(unittest.TestCase):
    """aioice builds the check as its Connection does; aioice verifies our answer."""

    def setUp(self):
        if aioice_stun is None:
            raise optional.missing("aioice")

    def aioice_check(self, tid, use_candidate):
        request = aioice_stun.Message(message_method=aioice_stun.Method.BINDING,
                                      message_class=aioice_stun.Class.REQUEST, transaction_id=tid)
        request.attributes["USERNAME"] = "%s:%s" % (UFRAG, PEER_UFRAG)
        request.attributes["PRIORITY"] = 1853824767
        request.attributes["ICE-CONTROLLING"] = 0x1122334455667788
        if use_candidate:
            request.attributes["USE-CANDIDATE"] = None
        request.add_message_integrity(PWD.encode())
        request.add_fingerprint()
        return bytes(request)

    def test_aioice_check_and_response(self):
        table = SessionTable()
        session = table.add(UFRAG, PWD, PEER_UFRAG, now=0)
        for index, addr in enumerate([("127.0.0.1", 41000), ("::1", 41001)]):
            tid = bytes([index]) * 12
            send = table.receive_datagram(self.aioice_check(tid, index == 1), addr, 1)[0]
            # aioice checks FINGERPRINT on parse, MESSAGE-INTEGRITY with our password after.
            response = aioice_stun.parse_message(send.data)
            self.assertTrue(response.check_message_integrity(PWD.encode()))
            self.assertEqual(response.message_method, aioice_stun.Method.BINDING)
            self.assertEqual(response.message_class, aioice_stun.Class.RESPONSE)
            self.assertEqual(response.transaction_id, tid)
            self.assertEqual(response.attributes["XOR-MAPPED-ADDRESS"], addr)
        self.assertEqual(session.address, ("::1", 41001))
        self.assertTrue(session.nominated)

    def test_aioice_rejects_another_password_or_a_corrupt_fingerprint(self):
        table = SessionTable()
        table.add(UFRAG, PWD, PEER_UFRAG, now=0)
        send = table.receive_datagram(self.aioice_check(b"x" * 12, True), A, 1)[0]
        response = aioice_stun.parse_message(send.data)
        self.assertFalse(response.check_message_integrity(b"not-our-password-at-all"))
        corrupt = bytearray(send.data)
        corrupt[-1] ^= 1
        with self.assertRaisesRegex(ValueError, "fingerprint"):
            aioice_stun.parse_message(bytes(corrupt))
