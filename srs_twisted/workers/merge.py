"""The HTTP API of ``workers N`` answers for the whole server: merging what each
worker's own API answered (pure functions; :mod:`.aggregate` fetches).

Each worker is one ``(streams, clients)`` pair of SRS JSON lists.  A stream another
worker publishes appears on every worker that pulls it (a copy whose publisher is
the pull) and the pull appears on the owner as a player whose ``tcUrl`` names the
owner's private RTMP port: those *internal* clients are left out, the copies fold
into the owner's stream (its id, publisher, frames, codecs; players and bytes sent
summed), and every client's ``stream`` names the merged stream."""

from __future__ import annotations

import copy

__all__ = ["internal_ids", "merge", "merge_vhosts", "merge_summaries", "merge_metrics"]


def internal_ids(clients: list[dict], private_rtmp: list[str]) -> set[str]:
    """Ids of the clients that are inter-worker pulls (connected to a private port)."""
    marks = [f"//{endpoint}/" for endpoint in private_rtmp if endpoint]
    return {c["id"] for c in clients if any(m in (c.get("tcUrl") or "") for m in marks)}


def _key(stream: dict) -> tuple:
    return stream.get("vhost"), stream.get("app"), stream.get("name")


def _kbps(obj: dict, field: str) -> int:
    return (obj.get("kbps") or {}).get(field, 0) or 0


def merge(workers: list[tuple[list[dict], list[dict]]], private_rtmp: list[str]) -> tuple[list, list, dict]:
    """``[(streams, clients), ...]`` (one pair per worker) -> (streams, clients, ids)
    for the whole server; ``ids`` maps every worker's stream id to the merged one."""
    real: list[tuple[list, list, set]] = []
    for streams, clients in workers:
        internal = internal_ids(clients, private_rtmp)
        real.append((streams, clients, internal))
    players = {c["id"] for _s, clients, internal in real for c in clients if c["id"] not in internal}
    groups: dict[tuple, list] = {}
    for streams, clients, internal in real:
        for s in streams:
            groups.setdefault(_key(s), []).append((s, clients, internal))
    out_streams, ids = [], {}
    for entries in groups.values():
        owner = next((s for s, _c, _i in entries if (s.get("publish") or {}).get("cid") in players), entries[0][0])
        merged = copy.deepcopy(owner)
        count = send = send_kbps = 0
        for s, clients, internal in entries:
            ids[s["id"]] = owner["id"]
            pulls = [c for c in clients if c["id"] in internal and c.get("stream") == s["id"]]
            count += s.get("clients", 0) - len(pulls)
            send += s.get("send_bytes", 0) - sum(c.get("send_bytes", 0) for c in pulls)
            send_kbps += _kbps(s, "send_30s") - sum(_kbps(c, "send_30s") for c in pulls)
        merged["clients"] = max(0, count)
        merged["send_bytes"] = max(0, send)
        merged.setdefault("kbps", {})["send_30s"] = max(0, send_kbps)
        out_streams.append(merged)
    out_clients = []
    for _streams, clients, internal in real:
        for c in clients:
            if c["id"] in internal:
                continue
            c = dict(c)
            if c.get("stream") in ids:
                c["stream"] = ids[c["stream"]]
            out_clients.append(c)
    return out_streams, out_clients, ids


def merge_vhosts(per_worker: list[list[dict]], streams: list[dict], clients: list[dict]) -> list[dict]:
    """Every worker's vhosts (the same ids on all) with the merged counts."""
    out: dict[str, dict] = {}
    for vhosts in per_worker:
        for v in vhosts:
            if v["id"] not in out:
                out[v["id"]] = merged = copy.deepcopy(v)
                merged.update(send_bytes=0, recv_bytes=0, kbps={"recv_30s": 0, "send_30s": 0})
            merged = out[v["id"]]
            merged["recv_bytes"] += v.get("recv_bytes", 0)
            merged["kbps"]["recv_30s"] += _kbps(v, "recv_30s")
    for vid, merged in out.items():
        mine = [c for c in clients if c.get("vhost") == vid]
        merged["clients"] = len(mine)
        merged["streams"] = sum(1 for s in streams if s.get("vhost") == vid and (s.get("publish") or {}).get("active"))
        merged["send_bytes"] = sum(c.get("send_bytes", 0) for c in mine)
        merged["kbps"]["send_30s"] = sum(_kbps(c, "send_30s") for c in mine)
    return list(out.values())


def merge_summaries(mine: dict, others: list[dict]) -> dict:
    """The answering worker's summary with the server-wide sums of every worker's
    process figures (memory, CPU, bytes, connections)."""
    out = copy.deepcopy(mine)
    for other in others:
        for field in ("mem_kbyte", "mem_percent", "cpu_percent"):
            out["self"][field] = out["self"].get(field, 0) + other["self"].get(field, 0)
        for field in ("srs_recv_bytes", "srs_send_bytes", "conn_srs"):
            out["system"][field] = out["system"].get(field, 0) + other["system"].get(field, 0)
    return out


def _series(line: str) -> tuple[str, str]:
    """'name{labels} value' -> ('name{labels}', 'value')."""
    head, _, value = line.rpartition(" ")
    return head, value


def merge_metrics(texts: list[str]) -> str:
    """Prometheus texts of every worker as one: the samples of one series summed
    (a ``*_info`` metric and comment lines are taken once, from the first worker)."""
    order: list[str] = []
    values: dict[str, float | str] = {}
    infos: set[str] = set()
    for text in texts:
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                if line not in values:
                    values[line] = ""
                    order.append(line)
                continue
            head, value = _series(line)
            name = head.partition("{")[0]
            try:
                number = float(value)
            except ValueError:
                continue
            if name.endswith("_info"):  # one per server (their labels name a worker's pid)
                if name not in infos:
                    infos.add(name)
                    values[head] = number
                    order.append(head)
            elif head not in values:
                values[head] = number
                order.append(head)
            else:
                values[head] += number
    out = []
    for head in order:
        value = values[head]
        if head.startswith("#"):
            out.append(head)
        else:
            out.append(f"{head} {int(value) if float(value).is_integer() else value}")
    return "\n".join(out) + "\n"
