"""The API of workers N: every worker's streams and clients merged into the server's."""

from twisted.trial import unittest

from srs_twisted.workers.merge import internal_ids, merge, merge_metrics, merge_summaries, merge_vhosts

PRIVATE = ["127.0.0.1:40001", "127.0.0.1:40002"]


def stream(sid, clients, send, publisher, active=True):
    return {"id": sid, "name": "s", "vhost": "vid-a", "app": "live", "clients": clients, "frames": 10,
            "send_bytes": send, "recv_bytes": 500, "kbps": {"recv_30s": 8, "send_30s": send // 10},
            "publish": {"active": active, "cid": publisher}, "video": {"codec": "H264"}, "audio": None}


def client(cid, sid, send, tc_url="rtmp://127.0.0.1:1935/live", kind="rtmp-play"):
    return {"id": cid, "vhost": "vid-a", "stream": sid, "tcUrl": tc_url, "type": kind, "send_bytes": send,
            "kbps": {"recv_30s": 0, "send_30s": send // 10}}


# Worker 0 publishes live/s (publisher "pub") to one local player and to worker 1's pull
# (a player of its private port); worker 1 has the pulled copy "vid-1" with two players.
W0 = ([stream("vid-0", 3, 300, "pub")],
      [client("pub", "vid-0", 0, kind="fmle-publish"), client("p0", "vid-0", 100),
       client("pull", "vid-0", 200, tc_url="rtmp://127.0.0.1:40001/live")])
W1 = ([stream("vid-1", 2, 200, "relay-cid")], [client("p1", "vid-1", 100), client("p2", "vid-1", 100)])


class Merge(unittest.TestCase):
    def test_internal_pulls_are_found_by_private_port(self):
        self.assertEqual(internal_ids(W0[1], PRIVATE), {"pull"})
        self.assertEqual(internal_ids(W1[1], PRIVATE), set())

    def test_one_stream_with_the_owners_id_and_every_real_player(self):
        streams, clients, ids = merge([W0, W1], PRIVATE)
        self.assertEqual(len(streams), 1)
        s = streams[0]
        self.assertEqual(s["id"], "vid-0")
        self.assertEqual(s["publish"], {"active": True, "cid": "pub"})
        self.assertEqual(s["clients"], 4)  # publisher + 3 players; the pull is not one
        self.assertEqual(s["send_bytes"], 300 - 200 + 200)
        self.assertEqual(s["kbps"]["send_30s"], 30 - 20 + 20)
        self.assertEqual(s["frames"], 10)
        self.assertEqual(ids, {"vid-0": "vid-0", "vid-1": "vid-0"})
        self.assertEqual(sorted(c["id"] for c in clients), ["p0", "p1", "p2", "pub"])
        self.assertEqual({c["stream"] for c in clients}, {"vid-0"})

    def test_owner_found_whatever_the_worker_order(self):
        streams, _clients, _ids = merge([W1, W0], PRIVATE)
        self.assertEqual(streams[0]["id"], "vid-0")

    def test_vhosts_counted_from_the_merged_lists(self):
        streams, clients, _ids = merge([W0, W1], PRIVATE)
        v = {"id": "vid-a", "name": "__defaultVhost__", "clients": 9, "streams": 9, "send_bytes": 1,
             "recv_bytes": 100, "kbps": {"recv_30s": 5, "send_30s": 9}, "hls": {"enabled": False}}
        merged = merge_vhosts([[v], [dict(v)]], streams, clients)
        self.assertEqual(len(merged), 1)
        self.assertEqual(merged[0]["clients"], 4)
        self.assertEqual(merged[0]["streams"], 1)
        self.assertEqual(merged[0]["recv_bytes"], 200)
        self.assertEqual(merged[0]["send_bytes"], 300)
        self.assertEqual(merged[0]["kbps"], {"recv_30s": 10, "send_30s": 30})

    def test_summaries_summed(self):
        one = {"self": {"pid": 1, "mem_kbyte": 100, "cpu_percent": 0.5, "mem_percent": 0.1},
               "system": {"conn_srs": 3, "srs_send_bytes": 10, "srs_recv_bytes": 1, "cpus": 2}}
        two = {"self": {"pid": 2, "mem_kbyte": 50, "cpu_percent": 0.25, "mem_percent": 0.1},
               "system": {"conn_srs": 4, "srs_send_bytes": 5, "srs_recv_bytes": 2, "cpus": 2}}
        out = merge_summaries(one, [two])
        self.assertEqual(out["self"]["pid"], 1)
        self.assertEqual(out["self"]["mem_kbyte"], 150)
        self.assertEqual(out["self"]["cpu_percent"], 0.75)
        self.assertEqual(out["system"]["conn_srs"], 7)
        self.assertEqual(out["system"]["srs_send_bytes"], 15)
        self.assertEqual(out["system"]["cpus"], 2)
        self.assertEqual(one["self"]["mem_kbyte"], 100)  # inputs untouched

    def test_metrics_summed_per_series(self):
        a = "# HELP srs_clients x\n# TYPE srs_clients gauge\nsrs_clients 3\nsrs_build_info{pid=\"1\"} 1\n" \
            "srs_stream_players{stream=\"s\"} 2\n"
        b = "# HELP srs_clients x\n# TYPE srs_clients gauge\nsrs_clients 4\nsrs_build_info{pid=\"2\"} 1\n" \
            "srs_stream_players{stream=\"s\"} 1.5\n"
        out = merge_metrics([a, b]).splitlines()
        self.assertEqual(out, ["# HELP srs_clients x", "# TYPE srs_clients gauge", "srs_clients 7",
                               'srs_build_info{pid="1"} 1', 'srs_stream_players{stream="s"} 3.5'])
