"""Tests for srs_twisted.codec.stun: RFC 5769 vectors, ICE-lite helpers, aioice cross-checks."""

import random
import struct
import zlib

from twisted.trial import unittest

from srs_twisted.codec import stun
from srs_twisted.codec.stun import StunError, StunErrorCode, StunMessage

from .. import optional
from .bits import assert_fuzz

try:
    from aioice import stun as aioice_stun
except ImportError:  # test-only dependency (the "test" extra)
    aioice_stun = None

# RFC 5769 2.1: a Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, a
# 9-byte USERNAME padded with spaces (padding content is ignored),
# MESSAGE-INTEGRITY and FINGERPRINT.
RFC5769_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"
RFC5769_TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
RFC5769_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"
    "002400046e0001ff"
    "80290008932ff9b151263b36"
    "000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004e57a3bcf")
# RFC 5769 2.2 and 2.3: success responses mapping 192.0.2.1:32853 and
# [2001:db8:1234:5678:11:2233:4455:6677]:32853.
RFC5769_RESPONSE_V4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96")
RFC5769_RESPONSE_V6 = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004c8fb0b4c")

PASSWORD = "0123456789abcdefghijklmnop"   # our (local) ICE password
TID = bytes(range(1, 13))


def attribute_bytes(data, attr_type):
    """The wire bytes (header, value, padding) of the first ``attr_type`` attribute."""
    offset = stun.HEADER_SIZE
    while offset < len(data):
        kind, size = struct.unpack_from(">HH", data, offset)
        end = offset + 4 + size + (-size % 4)
        if kind == attr_type:
            return data[offset:end]
        offset = end
    raise AssertionError("no attribute 0x%04x" % attr_type)


class Rfc5769Tests(unittest.TestCase):
    def test_request_vector(self):
        message = stun.parse(RFC5769_REQUEST)
        self.assertEqual((message.method, message.msg_class), (stun.BINDING, stun.REQUEST))
        self.assertEqual(message.transaction_id, RFC5769_TID)
        self.assertEqual(message.get(stun.SOFTWARE), "STUN test client")
        self.assertEqual(message.priority, 0x6E0001FF)
        self.assertEqual(message.ice_controlled, 0x932FF9B151263B36)
        self.assertIsNone(message.ice_controlling)
        self.assertFalse(message.use_candidate)
        self.assertEqual(message.username, "evtj:h6vY")
        self.assertEqual(stun.ice_ufrags(message), ("evtj", "h6vY"))
        self.assertEqual([kind for kind, _ in message.attributes],
                         [stun.SOFTWARE, stun.PRIORITY, stun.ICE_CONTROLLED, stun.USERNAME,
                          stun.MESSAGE_INTEGRITY, stun.FINGERPRINT])
        stun.check_request(message, RFC5769_PASSWORD)
        self.assertTrue(stun.integrity_ok(message, RFC5769_PASSWORD.encode()))
        self.assertTrue(stun.fingerprint_ok(message))

    def test_request_vector_wrong_password(self):
        message = stun.parse(RFC5769_REQUEST)
        self.assertFalse(stun.integrity_ok(message, "VOkJxbRl1RmTxUk/WvJxBT"))
        with self.assertRaisesRegex(StunError, "MESSAGE-INTEGRITY does not match"):
            stun.check_request(message, "VOkJxbRl1RmTxUk/WvJxBT")

    def test_response_vectors(self):
        for data, host in ((RFC5769_RESPONSE_V4, "192.0.2.1"),
                           (RFC5769_RESPONSE_V6, "2001:db8:1234:5678:11:2233:4455:6677")):
            message = stun.parse(data)
            self.assertEqual((message.method, message.msg_class), (stun.BINDING, stun.SUCCESS))
            self.assertEqual(message.xor_mapped_address, (host, 32853))
            self.assertEqual(message.get(stun.SOFTWARE), "test vector")
            stun.check_request(message, RFC5769_PASSWORD)
            # Our XOR-MAPPED-ADDRESS encoding is byte-identical to the vector's.
            ours = StunMessage(stun.BINDING, stun.SUCCESS, RFC5769_TID,
                               [(stun.XOR_MAPPED_ADDRESS, (host, 32853))]).encode()
            self.assertEqual(attribute_bytes(ours, stun.XOR_MAPPED_ADDRESS),
                             attribute_bytes(data, stun.XOR_MAPPED_ADDRESS))

    def test_corrupted_vector(self):
        data = bytearray(RFC5769_REQUEST)
        data[30] ^= 1  # inside SOFTWARE: covered by both checks
        message = stun.parse(bytes(data))
        self.assertFalse(stun.fingerprint_ok(message))
        self.assertFalse(stun.integrity_ok(message, RFC5769_PASSWORD))
        with self.assertRaisesRegex(StunError, "FINGERPRINT does not match"):
            stun.check_request(message, RFC5769_PASSWORD)

    def test_reencoding_with_the_password_reproduces_the_checks(self):
        # The vector pads USERNAME with spaces; we pad with zeros, so the HMAC
        # differs, but it must verify against the same password.
        message = stun.parse(RFC5769_REQUEST)
        again = stun.parse(message.encode(RFC5769_PASSWORD, fingerprint=True))
        self.assertEqual(again.transaction_id, RFC5769_TID)
        self.assertEqual(again.attributes[:4], message.attributes[:4])
        stun.check_request(again, RFC5769_PASSWORD)


class HeaderTests(unittest.TestCase):
    def test_message_types(self):
        for msg_class, expected in ((stun.REQUEST, 0x0001), (stun.INDICATION, 0x0011),
                                    (stun.SUCCESS, 0x0101), (stun.ERROR, 0x0111)):
            data = StunMessage(stun.BINDING, msg_class, TID).encode()
            self.assertEqual(data[:2], struct.pack(">H", expected))
            self.assertEqual(stun.parse(data).msg_class, msg_class)

    def test_every_method_and_class_round_trips(self):
        for method in range(0, 0x1000, 37):
            for msg_class in (stun.REQUEST, stun.INDICATION, stun.SUCCESS, stun.ERROR):
                message = stun.parse(StunMessage(method, msg_class, TID).encode())
                self.assertEqual((message.method, message.msg_class), (method, msg_class))
        # Allocate (0x003) success response is 0x0103 (RFC 8656)
        self.assertEqual(StunMessage(3, stun.SUCCESS, TID).encode()[:2], b"\x01\x03")

    def test_header_layout(self):
        data = StunMessage(stun.BINDING, stun.REQUEST, TID).encode()
        self.assertEqual(data, b"\x00\x01\x00\x00\x21\x12\xa4\x42" + TID)

    def test_header_errors(self):
        good = StunMessage(stun.BINDING, stun.REQUEST, TID, [(stun.PRIORITY, 1)]).encode()
        cases = {
            good[:19]: "shorter than its 20-byte header",
            b"\x40" + good[1:]: "first two bits",
            good[:4] + b"\x21\x12\xa4\x43" + good[8:]: "magic cookie",
            good + b"\0\0\0\0": "length field",
            good[:-4]: "length field",
            good[:2] + b"\x00\x06" + good[4:] + b"\0\0": "length field",  # not a multiple of 4
        }
        for data, message in cases.items():
            with self.assertRaisesRegex(StunError, message):
                stun.parse(data)

    def test_bad_transaction_id(self):
        with self.assertRaisesRegex(StunError, "transaction id of 11 bytes"):
            StunMessage(stun.BINDING, stun.REQUEST, TID[:11]).encode()
        with self.assertRaises(StunError):
            StunMessage(0x1000, stun.REQUEST, TID).encode()


class AttributeTests(unittest.TestCase):
    def round_trip(self, attributes):
        message = StunMessage(stun.BINDING, stun.REQUEST, TID, list(attributes))
        data = message.encode()
        self.assertEqual(len(data) % 4, 0)
        parsed = stun.parse(data)
        self.assertEqual(parsed, message)
        self.assertEqual(parsed.encode(), data)
        return data

    def test_username_padding(self):
        for size in range(0, 10):
            username = "u" * size
            data = self.round_trip([(stun.USERNAME, username), (stun.PRIORITY, 7)])
            self.assertEqual(len(data), 20 + 4 + size + (-size % 4) + 8)
            self.assertEqual(data[24 + size:24 + size + (-size % 4)], bytes(-size % 4))

    def test_table_values(self):
        data = self.round_trip([
            (stun.USERNAME, "srs1:c\u00e9"),
            (stun.PRIORITY, 0xFFFFFFFF),
            (stun.ICE_CONTROLLING, 0xFFFFFFFFFFFFFFFF),
            (stun.ICE_CONTROLLED, 1),
            (stun.USE_CANDIDATE, True),
            (stun.ERROR_CODE, StunErrorCode(487, "Role Conflict")),
            (stun.UNKNOWN_ATTRIBUTES, (0x0031, 0x8123)),
            (stun.MAPPED_ADDRESS, ("10.0.0.1", 1)),
            (stun.XOR_MAPPED_ADDRESS, ("fd00::2", 65535)),
            (stun.SOFTWARE, "srs-twisted"),
        ])
        message = stun.parse(data)
        self.assertTrue(message.use_candidate)
        self.assertEqual(message.error_code, StunErrorCode(487, "Role Conflict"))
        self.assertIn(stun.SOFTWARE, message)
        self.assertNotIn(stun.MESSAGE_INTEGRITY, message)
        # ERROR-CODE wire layout: class in the low 3 bits of byte 3, number in byte 4.
        self.assertEqual(attribute_bytes(data, stun.ERROR_CODE)[4:8], b"\x00\x00\x04\x57")
        # MAPPED-ADDRESS is not xor-ed.
        self.assertEqual(attribute_bytes(data, stun.MAPPED_ADDRESS),
                         b"\x00\x01\x00\x08\x00\x01\x00\x01\x0a\x00\x00\x01")

    def test_unknown_attributes_kept_raw(self):
        raw = [(0xC057, b"\x00\x01\x00\x0a"),   # Chrome's GOOG-NETWORK-INFO
               (0x0031, b"odd"),                  # comprehension-required, unknown to us
               (0x001C, bytes(32))]               # MESSAGE-INTEGRITY-SHA256
        data = self.round_trip(raw)
        self.assertEqual(stun.parse(data).get(0x0031), b"odd")
        self.assertEqual(attribute_bytes(data, 0x0031), b"\x00\x31\x00\x03odd\x00")
        with self.assertRaisesRegex(StunError, "must be bytes"):
            StunMessage(attributes=[(0x0031, 5)]).encode()

    def test_duplicates_get_first(self):
        message = stun.parse(self.round_trip([(stun.PRIORITY, 1), (stun.PRIORITY, 2)]))
        self.assertEqual(message.priority, 1)
        self.assertEqual(message.get(0x7777, "none"), "none")

    def test_ipv4_mapped_ipv6_source_is_sent_as_ipv4(self):
        data = StunMessage(stun.BINDING, stun.SUCCESS, TID,
                           [(stun.XOR_MAPPED_ADDRESS, ("::ffff:192.0.2.9", 4000))]).encode()
        self.assertEqual(attribute_bytes(data, stun.XOR_MAPPED_ADDRESS)[2:6], b"\x00\x08\x00\x01")
        self.assertEqual(stun.parse(data).xor_mapped_address, ("192.0.2.9", 4000))

    def test_malformed_values(self):
        def one(kind, value):
            return StunMessage(stun.BINDING, stun.REQUEST, TID).encode()[:2] + struct.pack(
                ">H", 4 + len(value) + (-len(value) % 4)) + stun.MAGIC_COOKIE.to_bytes(4, "big") \
                + TID + struct.pack(">HH", kind, len(value)) + value + bytes(-len(value) % 4)
        cases = [
            (stun.PRIORITY, b"\0\0\0", "PRIORITY of 3 bytes"),
            (stun.ICE_CONTROLLING, bytes(4), "ICE-CONTROLLING of 4 bytes"),
            (stun.USE_CANDIDATE, b"\0", "USE-CANDIDATE carries 1 bytes"),
            (stun.USERNAME, b"\xff\xfe", "USERNAME is not UTF-8"),
            (stun.MESSAGE_INTEGRITY, bytes(19), "MESSAGE-INTEGRITY of 19 bytes"),
            (stun.XOR_MAPPED_ADDRESS, b"\x00\x01\x00", "truncated"),
            (stun.XOR_MAPPED_ADDRESS, b"\x00\x03\x00\x01" + bytes(4), "family 3"),
            (stun.XOR_MAPPED_ADDRESS, b"\x00\x02\x00\x01" + bytes(4), "family 2"),
            (stun.ERROR_CODE, b"\x00\x00\x02\x00", "class 2"),
            (stun.ERROR_CODE, b"\x00\x00\x04\x64", "number 100"),
            (stun.ERROR_CODE, b"\x00\x00", "truncated"),
            (stun.ERROR_CODE, b"\x00\x00\x04\x00\xff", "not UTF-8"),
            (stun.UNKNOWN_ATTRIBUTES, b"\x00", "odd length"),
            (stun.FINGERPRINT, b"\0\0", "FINGERPRINT of 2 bytes"),
        ]
        for kind, value, message in cases:
            with self.assertRaisesRegex(StunError, message):
                stun.parse(one(kind, value))

    def test_unencodable_values(self):
        for attributes, message in (
                ([(stun.PRIORITY, -1)], "PRIORITY value -1"),
                ([(stun.PRIORITY, 1 << 32)], "does not fit"),
                ([(stun.XOR_MAPPED_ADDRESS, ("example.com", 1))], "not an IP address"),
                ([(stun.XOR_MAPPED_ADDRESS, ("10.0.0.1", 70000))], "port 70000"),
                ([(stun.ERROR_CODE, StunErrorCode(200, "OK"))], "out of range 300-699"),
                ([(stun.MESSAGE_INTEGRITY, b"short")], "MESSAGE-INTEGRITY of 5 bytes"),
                ([(0x10000, b"")], "attribute type"),
                ([(0x0031, bytes(70000))], "too long")):
            with self.assertRaisesRegex(StunError, message):
                StunMessage(stun.BINDING, stun.REQUEST, TID, attributes).encode()

    def test_truncated_attribute(self):
        data = StunMessage(stun.BINDING, stun.REQUEST, TID, [(stun.USERNAME, "abcdefgh")]).encode()
        with self.assertRaisesRegex(StunError, "overruns"):
            stun.parse(data[:2] + b"\x00\x08" + data[4:28])
        with self.assertRaisesRegex(StunError, "overruns"):   # declared 0x20 bytes, 8 present
            stun.parse(data[:22] + b"\x00\x20" + data[24:])


class IntegrityTests(unittest.TestCase):
    def request(self, **kw):
        return stun.binding_request("srv1:cli1", PASSWORD, priority=1, controlling=5,
                                    use_candidate=True, transaction_id=TID, **kw)

    def test_request_builder(self):
        data = self.request()
        message = stun.parse(data)
        self.assertEqual([kind for kind, _ in message.attributes],
                         [stun.USERNAME, stun.PRIORITY, stun.ICE_CONTROLLING, stun.USE_CANDIDATE,
                          stun.MESSAGE_INTEGRITY, stun.FINGERPRINT])
        self.assertEqual(message.transaction_id, TID)
        stun.check_request(message, PASSWORD)
        stun.check_request(message, PASSWORD.encode())
        # the integrity offset and length adjustment are those of RFC 8489 14.5
        self.assertEqual(data[-32:-28], b"\x00\x08\x00\x14")
        self.assertEqual(data[-8:-4], b"\x80\x28\x00\x04")

    def test_missing_or_wrong(self):
        unsigned = stun.parse(StunMessage(stun.BINDING, stun.REQUEST, TID,
                                          [(stun.USERNAME, "a:b")]).encode(fingerprint=True))
        with self.assertRaisesRegex(StunError, "no MESSAGE-INTEGRITY"):
            stun.check_request(unsigned, PASSWORD)
        self.assertFalse(stun.integrity_ok(unsigned, PASSWORD))
        no_fp = stun.parse(StunMessage(stun.BINDING, stun.REQUEST, TID,
                                       [(stun.USERNAME, "a:b")]).encode(PASSWORD))
        with self.assertRaisesRegex(StunError, "no FINGERPRINT"):
            stun.check_request(no_fp, PASSWORD)
        self.assertFalse(stun.fingerprint_ok(no_fp))
        stun.check_request(no_fp, PASSWORD, require_fingerprint=False)
        with self.assertRaisesRegex(StunError, "does not match the ICE password"):
            stun.check_request(stun.parse(self.request()), PASSWORD + "x")

    def test_tampered_fingerprint_and_integrity(self):
        data = bytearray(self.request())
        data[-1] ^= 0x80
        with self.assertRaisesRegex(StunError, "FINGERPRINT does not match"):
            stun.check_request(stun.parse(bytes(data)), PASSWORD)
        data = bytearray(self.request())
        data[-20] ^= 1   # inside the HMAC
        self.assertFalse(stun.fingerprint_ok(stun.parse(bytes(data))))
        refingerprinted = stun.parse(_append_fingerprint(_strip_fingerprint(bytes(data))))
        self.assertTrue(stun.fingerprint_ok(refingerprinted))
        with self.assertRaisesRegex(StunError, "MESSAGE-INTEGRITY does not match"):
            stun.check_request(refingerprinted, PASSWORD)

    def test_attributes_after_integrity_are_ignored(self):
        signed = StunMessage(stun.BINDING, stun.REQUEST, TID, [(stun.USERNAME, "a:b")]).encode(PASSWORD)
        data = _with_body_length(signed + struct.pack(">HHI", stun.PRIORITY, 4, 99))
        message = stun.parse(data)
        self.assertIsNone(message.priority)
        self.assertTrue(stun.integrity_ok(message, PASSWORD))
        # ... and a FINGERPRINT after them covers the whole message
        stun.check_request(stun.parse(_append_fingerprint(data)), PASSWORD)

    def test_nothing_may_follow_fingerprint(self):
        data = StunMessage(stun.BINDING, stun.REQUEST, TID).encode(fingerprint=True)
        extra = struct.pack(">HHI", stun.PRIORITY, 4, 1)
        with self.assertRaisesRegex(StunError, "follows FINGERPRINT"):
            stun.parse(_with_body_length(data + extra))

    def test_fresh_checks_replace_old_ones(self):
        message = stun.parse(self.request())
        other = stun.parse(message.encode("another password", fingerprint=True))
        self.assertEqual(sum(1 for kind, _ in other.attributes if kind == stun.MESSAGE_INTEGRITY), 1)
        stun.check_request(other, "another password")
        # a fingerprint alone keeps the existing MESSAGE-INTEGRITY valid
        again = stun.parse(message.encode(fingerprint=True))
        stun.check_request(again, PASSWORD)
        self.assertEqual(bytes(message), self.request())


def _with_body_length(data, extra=0):
    """``data`` with its header length field set to its body size plus ``extra``."""
    return data[:2] + struct.pack(">H", len(data) - 20 + extra) + data[4:]


def _strip_fingerprint(data):
    return _with_body_length(data[:-8])


def _append_fingerprint(data):
    body = _with_body_length(data, 8)
    return body + struct.pack(">HHI", stun.FINGERPRINT, 4, zlib.crc32(body) ^ 0x5354554E)


class IceLiteTests(unittest.TestCase):
    def test_binding_success(self):
        request = stun.parse(stun.binding_request("srv1:cli1", PASSWORD, priority=9,
                                                  controlling=1, use_candidate=True))
        for source, expected in ((("192.0.2.7", 54321), ("192.0.2.7", 54321)),
                                 (("fd00::2", 8000, 0, 0), ("fd00::2", 8000)),
                                 (("::ffff:10.1.2.3", 9), ("10.1.2.3", 9))):
            response = stun.parse(stun.binding_success(request, source, PASSWORD))
            self.assertEqual((response.method, response.msg_class), (stun.BINDING, stun.SUCCESS))
            self.assertEqual(response.transaction_id, request.transaction_id)
            self.assertEqual(response.xor_mapped_address, expected)
            self.assertEqual([kind for kind, _ in response.attributes],
                             [stun.XOR_MAPPED_ADDRESS, stun.MESSAGE_INTEGRITY, stun.FINGERPRINT])
            stun.check_request(response, PASSWORD)

    def test_binding_error(self):
        request = stun.parse(stun.binding_request("srv1:cli1", PASSWORD))
        response = stun.parse(stun.binding_error(request, 487, "Role Conflict", PASSWORD))
        self.assertEqual(response.msg_class, stun.ERROR)
        self.assertEqual(response.error_code, StunErrorCode(487, "Role Conflict"))
        stun.check_request(response, PASSWORD)
        unsigned = stun.parse(stun.binding_error(request, 400, "Bad Request"))
        self.assertTrue(stun.fingerprint_ok(unsigned))
        self.assertNotIn(stun.MESSAGE_INTEGRITY, unsigned)

    def test_ice_ufrags(self):
        def msg(username):
            attributes = [] if username is None else [(stun.USERNAME, username)]
            return StunMessage(stun.BINDING, stun.REQUEST, TID, attributes)
        self.assertEqual(stun.ice_ufrags(msg("abcd:efgh:ij")), ("abcd", "efgh:ij"))
        for bad in (None, "abcd", ":efgh", "abcd:"):
            with self.assertRaises(StunError):
                stun.ice_ufrags(msg(bad))

    def test_demultiplexing(self):
        kinds = {}
        for first in range(256):
            kinds.setdefault(stun.classify(bytes([first, 0])), []).append(first)
            self.assertEqual(stun.is_stun(bytes([first])), first <= 3)
        self.assertEqual(kinds["stun"], list(range(0, 4)))
        self.assertEqual(kinds["dtls"], list(range(20, 64)))
        self.assertEqual(kinds["rtp"], list(range(128, 192)))
        self.assertEqual(len(kinds[None]), 256 - 4 - 44 - 64)
        self.assertFalse(stun.is_stun(b""))
        self.assertIsNone(stun.classify(b""))
        self.assertTrue(stun.is_stun(RFC5769_REQUEST))
        self.assertEqual(stun.classify(memoryview(b"\x16\xfe\xfd")), "dtls")


class HostileInputTests(unittest.TestCase):
    def parse_and_check(self, data):
        message = stun.parse(data)
        stun.check_request(message, PASSWORD)

    def test_random_datagrams(self):
        rng = random.Random(5389)
        for _ in range(3000):
            size = rng.choice((rng.randrange(0, 24), rng.randrange(0, 200)))
            data = bytes(rng.randrange(256) for _ in range(size))
            try:
                self.parse_and_check(data)
            except StunError:
                pass

    def test_random_bodies_behind_a_valid_header(self):
        rng = random.Random(8489)
        kinds = list(stun.ATTRIBUTES) + [0x0031, 0xC057]
        for _ in range(3000):
            body = bytearray()
            for _ in range(rng.randrange(1, 5)):
                size = rng.randrange(0, 24)
                body += struct.pack(">HH", rng.choice(kinds), rng.choice((size, rng.randrange(64))))
                body += bytes(rng.randrange(256) for _ in range(size + (-size % 4)))
            data = struct.pack(">HHI12s", 0x0001, len(body), stun.MAGIC_COOKIE, TID) + bytes(body)
            try:
                self.parse_and_check(data)
            except StunError:
                pass

    def test_truncations_and_mutations(self):
        valid = stun.binding_request("srv1:cli1", PASSWORD, priority=1, controlling=2,
                                     use_candidate=True, transaction_id=TID)
        for end in range(len(valid)):
            with self.assertRaises(StunError):
                stun.parse(valid[:end])
        assert_fuzz(self, self.parse_and_check, valid, rounds=2000, rng_seed=7, error=StunError)
        assert_fuzz(self, self.parse_and_check, RFC5769_RESPONSE_V6, rounds=2000, rng_seed=8,
                    error=StunError)


class AioiceCrossTests(unittest.TestCase):
    """Messages aioice (aiortc's ICE stack) builds parse and verify in ours, and back."""

    if aioice_stun is None:
        skip = optional.skip_reason(False, "aioice")

    def aioice_request(self, password=PASSWORD):
        request = aioice_stun.Message(message_method=aioice_stun.Method.BINDING,
                                      message_class=aioice_stun.Class.REQUEST)
        request.attributes["USERNAME"] = "srv1:cli1"
        request.attributes["PRIORITY"] = 1853817087
        request.attributes["ICE-CONTROLLING"] = 0x1122334455667788
        request.attributes["USE-CANDIDATE"] = None
        request.add_message_integrity(password.encode())
        return request

    def test_aioice_request_parses_and_verifies(self):
        request = self.aioice_request()
        message = stun.parse(bytes(request))
        self.assertEqual(message.transaction_id, request.transaction_id)
        self.assertEqual(message.username, "srv1:cli1")
        self.assertEqual(message.priority, 1853817087)
        self.assertEqual(message.ice_controlling, 0x1122334455667788)
        self.assertTrue(message.use_candidate)
        stun.check_request(message, PASSWORD)
        with self.assertRaises(StunError):
            stun.check_request(message, "wrong-password-wrong-pw")
        self.assertEqual(bytes(message), bytes(request))

    def test_our_response_parses_and_verifies_in_aioice(self):
        request = stun.parse(bytes(self.aioice_request()))
        for source in (("192.0.2.7", 54321), ("2001:db8::7", 40000)):
            response = aioice_stun.parse_message(stun.binding_success(request, source, PASSWORD))
            self.assertEqual(response.message_class, aioice_stun.Class.RESPONSE)
            self.assertEqual(response.transaction_id, request.transaction_id)
            self.assertEqual(response.attributes["XOR-MAPPED-ADDRESS"], source)
            self.assertTrue(response.check_message_integrity(PASSWORD.encode()))
            self.assertFalse(response.check_message_integrity(b"other"))

    def test_our_request_and_error_parse_in_aioice(self):
        data = stun.binding_request("srv1:cli1", PASSWORD, priority=7, controlled=3)
        request = aioice_stun.parse_message(data)
        self.assertEqual(request.attributes["USERNAME"], "srv1:cli1")
        self.assertEqual(request.attributes["PRIORITY"], 7)
        self.assertEqual(request.attributes["ICE-CONTROLLED"], 3)
        self.assertTrue(request.check_message_integrity(PASSWORD.encode()))
        error = aioice_stun.parse_message(
            stun.binding_error(stun.parse(data), 401, "Unauthorized"))
        self.assertEqual(error.message_class, aioice_stun.Class.ERROR)
        self.assertEqual(error.attributes["ERROR-CODE"], (401, "Unauthorized"))
