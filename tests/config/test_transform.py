"""Legacy SRS layouts are rewritten into the current one before checking."""

from twisted.trial import unittest

from srs_twisted.config.parser import parse_string
from srs_twisted.config.transform import transform


def tree(text):
    return transform(parse_string(text))


def shape(node):
    """A compact, comparable picture of a tree: (name, args, [children])."""
    return (node.name, node.args, [shape(c) for c in node.children])


class RootTransformTests(unittest.TestCase):
    def test_root_listen_and_chunk_size_move_into_rtmp(self):
        root = tree("listen 1935 [::]:1935;\nchunk_size 4096;\nvhost a {}")
        self.assertIsNone(root.get("listen"))
        self.assertIsNone(root.get("chunk_size"))
        rtmp = root.get("rtmp")
        self.assertEqual(rtmp.get("listen").args, ["1935", "[::]:1935"])
        self.assertEqual(rtmp.get("chunk_size").args, ["4096"])
        # The moved directive still points at what the user wrote.
        self.assertEqual((rtmp.get("chunk_size").line, rtmp.get("chunk_size").col), (2, 1))
        self.assertEqual(rtmp.get("listen").arg_pos, [(1, 8), (1, 13)])

    def test_root_level_beats_rtmp_block_and_first_root_wins(self):
        root = tree("rtmp { listen 1936; chunk_size 128; }\nlisten 1937;\nlisten 1938;")
        rtmp = root.get("rtmp")
        self.assertEqual(len(root.get_all("rtmp")), 1)
        self.assertEqual(len(rtmp.get_all("listen")), 1)
        self.assertEqual(rtmp.get("listen").args, ["1937"])
        self.assertEqual(rtmp.get("chunk_size").args, ["128"])

    def test_rtmp_block_alone_is_untouched(self):
        root = tree("rtmp { listen 1936; }")
        self.assertEqual(shape(root), ("", [], [("rtmp", [], [("listen", ["1936"], [])])]))

    def test_http_stream_becomes_http_server(self):
        root = tree("http_stream { enabled on; listen 8081; }")
        self.assertEqual(root.get("http_server").get("listen").args, ["8081"])
        self.assertIsNone(root.get("http_stream"))

    def test_rtc_server_drops_removed_keys(self):
        root = tree("rtc_server { enabled on; perf_stat on; queue_length 10; listen 8000; }")
        self.assertEqual([c.name for c in root.get("rtc_server").children], ["enabled", "listen"])

    def test_srt_server_tlpkdrop_spelling(self):
        root = tree("srt_server { tlpkdrop off; }")
        self.assertEqual(root.get("srt_server").get("tlpktdrop").args, ["off"])

    def test_gb28181_unused_keys_dropped_and_host_moved(self):
        root = tree(
            "stream_caster { caster gb28181; tcp_enable on; rtp_port_min 1; host 1.2.3.4;"
            " sip { enabled on; serial 34020000002000000001; realm 3402000000; } }"
        )
        caster = root.get("stream_caster")
        self.assertEqual([c.name for c in caster.children], ["caster", "sip"])
        sip = caster.get("sip")
        self.assertEqual([c.name for c in sip.children], ["enabled", "candidate"])
        self.assertEqual(sip.get("candidate").args, ["1.2.3.4"])

    def test_host_creates_sip_when_missing(self):
        root = tree("stream_caster { caster gb28181; host *; }")
        self.assertEqual(root.get("stream_caster").get("sip").get("candidate").args, ["*"])


class VhostTransformTests(unittest.TestCase):
    def vhost(self, body):
        return tree("vhost v {\n" + body + "\n}").get("vhost")

    def test_flat_play_keys_move_into_play(self):
        v = self.vhost(
            "gop_cache off; queue_length 10; time_jitter zero; mix_correct on; atc on; atc_auto on;"
            " mw_latency 100; gop_cache_max_frames 10; send_min_interval 1.5; reduce_sequence_header on;"
        )
        play = v.get("play")
        self.assertEqual(
            [(c.name, c.args) for c in play.children],
            [
                ("gop_cache", ["off"]),
                ("queue_length", ["10"]),
                ("time_jitter", ["zero"]),
                ("mix_correct", ["on"]),
                ("atc", ["on"]),
                ("atc_auto", ["on"]),
                ("mw_latency", ["100"]),
                ("gop_cache_max_frames", ["10"]),
                ("send_min_interval", ["1.5"]),
                ("reduce_sequence_header", ["on"]),
            ],
        )
        self.assertEqual([c.name for c in v.children], ["play"])

    def test_flat_key_overrides_play_block(self):
        v = self.vhost("play { gop_cache on; queue_length 5; }\ngop_cache off;")
        play = v.get("play")
        self.assertEqual(len(v.get_all("play")), 1)
        self.assertEqual(play.get("gop_cache").args, ["off"])
        self.assertEqual((play.get("gop_cache").line, play.get("gop_cache").col), (3, 1))
        self.assertEqual(play.get("queue_length").args, ["5"])

    def test_mr_block_moves_into_publish(self):
        v = self.vhost("mr { enabled on; latency 100; }")
        publish = v.get("publish")
        self.assertEqual([(c.name, c.args) for c in publish.children], [("mr", ["on"]), ("mr_latency", ["100"])])
        self.assertIsNone(v.get("mr"))

    def test_publish_timeouts_are_renamed(self):
        v = self.vhost("publish_1stpkt_timeout 30000; publish_normal_timeout 7000; publish { parse_sps off; }")
        publish = v.get("publish")
        self.assertEqual(
            [(c.name, c.args) for c in publish.children],
            [("parse_sps", ["off"]), ("firstpkt_timeout", ["30000"]), ("normal_timeout", ["7000"])],
        )

    def test_flat_refer(self):
        v = self.vhost("refer a.com b.com; refer_play p.com; refer_publish u.com;")
        refer = v.get("refer")
        self.assertEqual(
            [(c.name, c.args) for c in refer.children],
            [("enabled", ["on"]), ("all", ["a.com", "b.com"]), ("play", ["p.com"]), ("publish", ["u.com"])],
        )
        self.assertEqual(len(v.get_all("refer")), 1)

    def test_refer_block_is_kept(self):
        v = self.vhost("refer { enabled off; all x.com; }")
        self.assertEqual(shape(v.get("refer")), ("refer", [], [("enabled", ["off"], []), ("all", ["x.com"], [])]))

    def test_flat_forward(self):
        v = self.vhost("forward 127.0.0.1:1936 127.0.0.1:1937;")
        forward = v.get("forward")
        self.assertEqual(forward.args, [])
        self.assertEqual(
            [(c.name, c.args) for c in forward.children],
            [("enabled", ["on"]), ("destination", ["127.0.0.1:1936", "127.0.0.1:1937"])],
        )

    def test_flat_cluster_keys(self):
        v = self.vhost("mode remote; origin 1.1.1.1:1935 2.2.2.2; token_traverse on; vhost up.com; debug_srs_upnode off;")
        cluster = v.get("cluster")
        self.assertEqual(
            [(c.name, c.args) for c in cluster.children],
            [
                ("mode", ["remote"]),
                ("origin", ["1.1.1.1:1935", "2.2.2.2"]),
                ("token_traverse", ["on"]),
                ("vhost", ["up.com"]),
                ("debug_srs_upnode", ["off"]),
            ],
        )

    def test_http_becomes_http_static(self):
        v = self.vhost("http { enabled on; mount [vhost]/; }")
        self.assertEqual(v.get("http_static").get("mount").args, ["[vhost]/"])

    def test_http_remux_hstrs_dropped(self):
        v = self.vhost("http_remux { enabled on; hstrs on; mount x.flv; }")
        self.assertEqual([c.name for c in v.get("http_remux").children], ["enabled", "mount"])

    def test_nack_and_twcc_move_into_rtc(self):
        v = self.vhost("rtc { enabled on; }\nnack { enabled off; no_copy off; }\ntwcc { enabled off; }")
        rtc = v.get("rtc")
        self.assertEqual(
            [(c.name, c.args) for c in rtc.children],
            [("enabled", ["on"]), ("nack", ["off"]), ("nack_no_copy", ["off"]), ("twcc", ["off"])],
        )

    def test_rtc_aac_and_bframe(self):
        v = self.vhost("rtc { aac transcode; bframe keep; }")
        self.assertEqual(
            [(c.name, c.args) for c in v.get("rtc").children], [("rtmp_to_rtc", ["on"]), ("keep_bframe", ["on"])]
        )
        v = self.vhost("rtc { aac discard; bframe discard; rtmp_to_rtc on; }")
        self.assertEqual(
            [(c.name, c.args) for c in v.get("rtc").children], [("rtmp_to_rtc", ["off"]), ("keep_bframe", ["off"])]
        )

    def test_current_layout_is_untouched(self):
        text = (
            "vhost v { play { gop_cache on; } publish { mr off; } cluster { mode local; }"
            " forward { enabled off; destination 1.1.1.1; } refer { enabled on; all a.com; } }"
        )
        self.assertEqual(shape(tree(text)), shape(parse_string(text)))
