"""Tests for srs_twisted.codec.sip: SIP messages parsed and serialized, framed on a stream, bounded."""

import random

from twisted.trial import unittest

from srs_twisted.codec.sip import SipError, SipMessage, SipStreamParser, parse_datagram, parse_params

REGISTER = (
    "REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273\r\n"
    "From: <sip:34020000001320000001@3402000000>;tag=2043466181\r\n"
    "To: <sip:34020000001320000001@3402000000>\r\n"
    "Call-ID: 1011047669\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    "Max-Forwards: 70\r\n"
    "User-Agent: IP Camera\r\n"
    "Expires: 3600\r\n"
    "Content-Length: 0\r\n\r\n").encode()
KEEPALIVE_BODY = (b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
                  b'<SN>7</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n')
MESSAGE = (
    "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    "v: SIP/2.0/TCP 192.168.1.64:5060;branch=z9hG4bKabc\r\n"
    "f: <sip:34020000001320000001@3402000000>;tag=x1\r\n"
    "t: <sip:34020000002000000001@3402000000>\r\n"
    "i: 77\r\nCSeq: 20 MESSAGE\r\nc: Application/MANSCDP+xml\r\n"
    "l: %d\r\n\r\n" % len(KEEPALIVE_BODY)).encode() + KEEPALIVE_BODY


class MessageTests(unittest.TestCase):
    def test_request_fields(self):
        m = parse_datagram(REGISTER)
        self.assertEqual((m.method, m.uri, m.is_request), ("REGISTER", "sip:34020000002000000001@3402000000", True))
        self.assertEqual((m.call_id, m.cseq, m.branch), ("1011047669", (1, "REGISTER"), "z9hG4bK1371463273"))
        self.assertEqual((m.from_tag, m.to_tag, m.expires, m.body), ("2043466181", "", 3600, b""))

    def test_compact_forms_and_body(self):
        m = parse_datagram(MESSAGE)
        self.assertEqual((m.call_id, m.from_tag, m.get("Content-Type"), m.body), ("77", "x1", "Application/MANSCDP+xml",
                                                                                 KEEPALIVE_BODY))
        self.assertEqual(m.branch, "z9hG4bKabc")

    def test_round_trip(self):
        m = parse_datagram(MESSAGE)
        again = parse_datagram(m.to_bytes())
        self.assertEqual((again.headers[:5], again.body), (m.headers[:5], m.body))
        self.assertIn(b"\r\nContent-Length: %d\r\n\r\n" % len(KEEPALIVE_BODY), m.to_bytes())

    def test_response(self):
        r = SipMessage(status=200, headers=[("Via", "SIP/2.0/UDP a;branch=z9hG4bKx"), ("Call-ID", "c"),
                                            ("CSeq", "5 INVITE"), ("From", "<sip:a@b>;tag=1"), ("To", "<sip:c@d>;tag=2")],
                       body=b"v=0\r\n")
        data = r.to_bytes()
        self.assertTrue(data.startswith(b"SIP/2.0 200 OK\r\n"))
        m = parse_datagram(data)
        self.assertEqual((m.status, m.is_request, m.cseq, m.to_tag, m.body), (200, False, (5, "INVITE"), "2", b"v=0\r\n"))

    def test_expires_from_contact_and_params(self):
        m = parse_datagram(REGISTER.replace(b"Expires: 3600\r\n", b"").replace(b"5060>", b"5060>;expires=0"))
        self.assertEqual(m.expires, 0)
        self.assertEqual(parse_params('x;A=1;b;c="q"'), {"a": "1", "b": "", "c": "q"})

    def test_folded_header_and_multiple_vias(self):
        m = parse_datagram(REGISTER.replace(b"Max-Forwards: 70\r\n", b"Via: SIP/2.0/UDP p;branch=2,\r\n SIP/2.0/UDP q\r\n"))
        self.assertEqual(m.get_all("via")[1:], ["SIP/2.0/UDP p;branch=2", "SIP/2.0/UDP q"])
        self.assertEqual(m.branch, "z9hG4bK1371463273")

    def test_bad_messages(self):
        for bad in (b"", b"hello\r\n\r\n", b"REGISTER sip:x HTTP/1.1\r\n\r\n", b"SIP/2.0 99 x\r\n\r\n",
                    REGISTER.replace(b"Call-ID: 1011047669\r\n", b""), REGISTER.replace(b"1 REGISTER", b"x REGISTER"),
                    REGISTER.replace(b"Content-Length: 0", b"Content-Length: 10"),
                    REGISTER.replace(b"Content-Length: 0", b"Content-Length: 99999999"),
                    REGISTER.replace(b"User-Agent", b"User Agent"), b"\xff\xfe\r\n\r\n"):
            self.assertRaises(SipError, parse_datagram, bad)

    def test_limits(self):
        big = REGISTER.replace(b"User-Agent: IP Camera", b"X-Pad: " + b"a" * 20000)
        self.assertRaises(SipError, parse_datagram, big)
        many = REGISTER.replace(b"User-Agent: IP Camera\r\n", b"X: y\r\n" * 101)
        self.assertRaises(SipError, parse_datagram, many)

    def test_fuzz(self):
        rng = random.Random(3)
        for _ in range(2000):
            b = bytearray(MESSAGE)
            for _ in range(rng.randrange(1, 6)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            try:
                parse_datagram(bytes(b))
            except SipError:
                pass


class StreamTests(unittest.TestCase):
    def test_split_everywhere(self):
        data = b"\r\n\r\n" + REGISTER + MESSAGE + REGISTER
        for size in (1, 2, 5, 64, len(data)):
            p = SipStreamParser()
            out = []
            for i in range(0, len(data), size):
                out += p.feed(data[i:i + size])
            self.assertEqual([m.method for m in out], ["REGISTER", "MESSAGE", "REGISTER"], size)
            self.assertEqual(out[1].body, KEEPALIVE_BODY)

    def test_oversized_headers_and_body(self):
        p = SipStreamParser(max_header=1000)
        self.assertRaises(SipError, p.feed, b"x" * 1001)
        p = SipStreamParser(max_body=100)
        self.assertRaises(SipError, p.feed, MESSAGE)
        p = SipStreamParser()
        self.assertEqual(p.feed(b"REGISTER sip:x SIP/2.0\r\n" + b"X: y\r\n" * 10), [])
