"""The SRT to SRT relay (srs_twisted/srt/relay.py): keyframe starts, PSI, the start cache's bound."""

from twisted.trial import unittest

from srs_twisted.srt.relay import TsRelay, is_video_random_access


def ts_packet(pid: int, payload: bytes, pusi: bool = True, rai: bool = False, cc: int = 0) -> bytes:
    if rai:
        head = bytes((0x47, (0x40 if pusi else 0) | pid >> 8, pid & 0xFF, 0x30 | cc, 1, 0x40))
    else:
        head = bytes((0x47, (0x40 if pusi else 0) | pid >> 8, pid & 0xFF, 0x10 | cc))
    return (head + payload + b"\xff" * 188)[:188]


def pes(es: bytes) -> bytes:
    return b"\x00\x00\x01\xe0\x00\x00\x80\x80\x05" + bytes(5) + es


def section(table_id: int, body: bytes) -> bytes:
    length = 5 + len(body) + 4
    return b"\x00" + bytes((table_id, 0xB0 | length >> 8, length & 0xFF)) + b"\x00\x01\xc1\x00\x00" + body + bytes(4)


PAT = ts_packet(0, section(0, b"\x00\x01\xf0\x00"))  # program 1 -> PMT PID 0x1000


def pmt(video_type: int) -> bytes:
    streams = bytes((video_type,)) + b"\xe1\x00\xf0\x00" + b"\x0f\xe1\x01\xf0\x00"
    return ts_packet(0x1000, section(2, b"\xe1\x00\xf0\x00" + streams))


class RandomAccess(unittest.TestCase):
    def test_indicator_or_parameter_sets_make_a_keyframe(self):
        self.assertTrue(is_video_random_access(ts_packet(0x100, pes(b"\x00\x00\x00\x01\x41"), rai=True), "h264"))
        self.assertTrue(is_video_random_access(ts_packet(0x100, pes(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x67")),
                                               "h264"))  # AUD then SPS, no indicator
        self.assertTrue(is_video_random_access(ts_packet(0x100, pes(b"\x00\x00\x01\x65")), "h264"))  # IDR
        self.assertFalse(is_video_random_access(ts_packet(0x100, pes(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x41")),
                                                "h264"))
        self.assertTrue(is_video_random_access(ts_packet(0x100, pes(b"\x00\x00\x01\x40\x01")), "h265"))  # VPS
        self.assertTrue(is_video_random_access(ts_packet(0x100, pes(b"\x00\x00\x01\x26\x01")), "h265"))  # IDR_W_RADL
        self.assertFalse(is_video_random_access(ts_packet(0x100, pes(b"\x00\x00\x01\x02\x01")), "h265"))  # TRAIL_R
        self.assertFalse(is_video_random_access(ts_packet(0x100, b"garbage"), "h264"))


class Relay(unittest.TestCase):
    def test_a_joining_player_starts_at_the_keyframe_with_psi(self):
        relay = TsRelay()
        before = ts_packet(0x100, pes(b"\x00\x00\x01\x41"))
        key = ts_packet(0x100, pes(b"\x00\x00\x01\x09\xf0\x00\x00\x01\x67"))
        audio = ts_packet(0x101, b"\x00" * 20)
        relay.feed([PAT + pmt(0x1B) + before + audio, key + audio, audio])
        got = []
        relay.add("p", got.extend)
        self.assertEqual(got, [PAT + pmt(0x1B), key + audio, audio])
        relay.feed([audio])
        self.assertEqual(got[-1], audio)  # then live
        relay.remove("p")
        relay.feed([audio])
        self.assertEqual(len(got), 4)

    def test_no_video_pid_known_no_cache(self):
        relay = TsRelay()
        relay.feed([ts_packet(0x100, pes(b"\x00\x00\x01\x65"))])  # no PAT/PMT yet: not known as video
        self.assertEqual(relay.start(), [])
        relay.feed([PAT + pmt(0x24), ts_packet(0x100, pes(b"\x00\x00\x01\x65"))])  # H.265 type 50: not IRAP
        self.assertEqual(relay.start(), [])

    def test_the_cache_is_bounded(self):
        relay = TsRelay(max_cache=188 * 10)
        relay.feed([PAT + pmt(0x1B), ts_packet(0x100, pes(b"\x00\x00\x01\x65"))])
        self.assertEqual(len(relay.start()), 2)
        relay.feed([ts_packet(0x100, b"x", pusi=False)] * 9)
        self.assertEqual(len(relay.start()), 11)
        relay.feed([ts_packet(0x100, b"x", pusi=False)])  # beyond the bound: players join live
        self.assertEqual(relay.start(), [])
        relay.feed([ts_packet(0x100, pes(b"\x00\x00\x01\x65"), rai=True)])  # until the next keyframe
        self.assertEqual(len(relay.start()), 2)

    def test_no_start_cache_when_the_gop_cache_is_off(self):
        relay = TsRelay(start_cache=False)
        relay.feed([PAT + pmt(0x1B), ts_packet(0x100, pes(b"\x00\x00\x01\x65"))])
        self.assertEqual(relay.start(), [])

    def test_garbage_is_relayed_without_harm(self):
        relay = TsRelay()
        got = []
        relay.add("p", got.extend)
        junk = [b"", b"\x47", b"\x47\x40\x00\x30\xff" + bytes(183), bytes(1316), b"\x47\x5f\xff\x10" * 47]
        relay.feed(junk)
        self.assertEqual(got, junk)
