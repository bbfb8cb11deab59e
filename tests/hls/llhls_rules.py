"""An LL-HLS media playlist checked against the rules of the HLS spec
(draft-pantos-hls-rfc8216bis: 4.4.3.7 PART-INF, 4.4.3.8 SERVER-CONTROL,
4.4.4.9 EXT-X-PART, 4.4.5.3 PRELOAD-HINT, 6.2.2 part windows), used on the
segmenter's playlists and on the real server's.

``check_ll_playlist(text)`` raises AssertionError naming the broken rule,
else returns what it read::

    {"version", "target", "media_sequence", "part_target", "part_hold_back",
     "segments": [{"msn", "duration", "uri", "parts": [part...], "tags": [...]}],
     "open": {"msn", "parts": [part...], "tags"} or None,
     "hint": uri}

with each part ``{"duration", "uri", "independent"}``.
"""

from __future__ import annotations

import re

# Printed durations: EXTINF has 3 decimals, EXT-X-PART 5.
SUM_TOLERANCE = 0.0011

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(text: str) -> dict:
    return {k: v.strip('"') for k, v in _ATTR.findall(text)}


def part_number(uri: str) -> int | None:
    """Our part names end in ``-partN.m4s``."""
    m = re.search(r"-part(\d+)\.m4s$", uri)
    return int(m.group(1)) if m else None


def check_ll_playlist(text: str, expect_independent_first: bool = True, numbered: bool = True) -> dict:
    lines = text.splitlines()
    assert lines and lines[0] == "#EXTM3U", "the playlist starts with #EXTM3U"
    info: dict = {"segments": [], "open": None, "hint": None}
    pending_tags: list = []
    pending_parts: list = []
    duration = None
    hints = []
    for line in lines[1:]:
        if not line:
            continue
        if line.startswith("#EXT-X-VERSION:"):
            info["version"] = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            info["target"] = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            info["media_sequence"] = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            info["discontinuity_sequence"] = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            attrs = attributes(line.split(":", 1)[1])
            info["can_block_reload"] = attrs.get("CAN-BLOCK-RELOAD")
            info["part_hold_back"] = float(attrs["PART-HOLD-BACK"]) if "PART-HOLD-BACK" in attrs else None
        elif line.startswith("#EXT-X-PART-INF:"):
            info["part_target"] = float(attributes(line.split(":", 1)[1])["PART-TARGET"])
        elif line.startswith("#EXT-X-PART:"):
            attrs = attributes(line.split(":", 1)[1])
            assert "DURATION" in attrs and "URI" in attrs, f"EXT-X-PART needs DURATION and URI: {line}"
            pending_parts.append({
                "duration": float(attrs["DURATION"]), "uri": attrs["URI"],
                "independent": attrs.get("INDEPENDENT") == "YES",
            })
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            hints.append(attributes(line.split(":", 1)[1]))
        elif line.startswith(("#EXT-X-DISCONTINUITY", "#EXT-X-MAP:", "#EXT-X-KEY:", "#EXT-X-PROGRAM-DATE-TIME:")):
            # 4.4.4.9: tags of a parent segment come before its first EXT-X-PART
            assert not pending_parts, f"{line} after the segment's first EXT-X-PART"
            pending_tags.append(line)
        elif line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:"):].split(",")[0])
        elif line.startswith("#"):
            continue
        else:
            assert duration is not None, f"a URI without EXTINF: {line}"
            info["segments"].append({"duration": duration, "uri": line, "parts": pending_parts,
                                     "tags": pending_tags})
            pending_parts, pending_tags, duration = [], [], None
    assert duration is None, "EXTINF without URI at the end"
    for key in ("version", "target", "media_sequence", "part_target"):
        assert key in info, f"no {key}"
    assert info["segments"], "no whole segment"
    if pending_parts:
        info["open"] = {"parts": pending_parts, "tags": pending_tags}
    # 4.4.3.8: blocking reloads, PART-HOLD-BACK at least 2x (SHOULD 3x) PART-TARGET
    part_target = info["part_target"]
    assert info.get("can_block_reload") == "YES", "EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"
    assert info.get("part_hold_back") is not None, "PART-HOLD-BACK is required with parts"
    assert info["part_hold_back"] >= 3 * part_target - 1e-6, "PART-HOLD-BACK >= 3 x PART-TARGET"
    # 4.4.5.3: one preload hint of TYPE=PART
    assert len(hints) == 1 and hints[0].get("TYPE") == "PART" and hints[0].get("URI"), f"hints: {hints}"
    info["hint"] = hints[0]["URI"]
    for i, seg in enumerate(info["segments"]):
        seg["msn"] = info["media_sequence"] + i
        # 6.2.1: a segment's duration, rounded, is at most the target duration
        assert round(seg["duration"]) <= info["target"], f"segment {seg['msn']} longer than the target"
    if info["open"] is not None:
        info["open"]["msn"] = info["media_sequence"] + len(info["segments"])
    listed = [(seg, True) for seg in info["segments"] if seg["parts"]]
    if info["open"] is not None:
        listed.append((info["open"], False))
    all_parts = [p for seg, _ in listed for p in seg["parts"]]
    for seg, closed in listed:
        parts = seg["parts"]
        for j, part in enumerate(parts):
            # 4.4.4.9: at most PART-TARGET...
            assert part["duration"] <= part_target + 1e-9, (
                f"part {part['uri']} lasts {part['duration']} > PART-TARGET {part_target}")
            # ... and at least 85% of it, but for INDEPENDENT parts and a segment's last
            last = j == len(parts) - 1
            if not part["independent"] and not last:
                assert part["duration"] >= 0.85 * part_target - 1e-9, (
                    f"part {part['uri']} lasts {part['duration']} < 85% of PART-TARGET")
        if closed:
            # the parts of a segment add up to it
            total = sum(p["duration"] for p in parts)
            assert abs(total - seg["duration"]) <= SUM_TOLERANCE, (
                f"segment {seg['msn']}: parts add up to {total:.5f}, EXTINF {seg['duration']:.3f}")
        if expect_independent_first:
            assert parts[0]["independent"], f"segment {seg['msn']} does not start with an INDEPENDENT part"
    # 6.2.2: parts are listed for the segments within three target durations
    # of the end (at least), and not for those further away
    end = sum(s["duration"] for s in info["segments"])
    if info["open"] is not None:
        end += sum(p["duration"] for p in info["open"]["parts"])
    start = end
    limit = 3 * info["target"]
    if info["open"] is not None:
        start -= sum(p["duration"] for p in info["open"]["parts"])
    for seg in reversed(info["segments"]):
        start -= seg["duration"]
        within = end - start <= limit + 1e-6
        if within:
            assert seg["parts"], f"segment {seg['msn']} is within 3 target durations of the end but has no parts"
        else:
            assert not seg["parts"], f"segment {seg['msn']} is over 3 target durations from the end but lists parts"
    # parts with parents: a segment with parts has them all (ours are numbered)
    if numbered:
        numbers = [part_number(p["uri"]) for p in all_parts]
        assert None not in numbers, f"unnumbered parts: {numbers}"
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), f"parts skip: {numbers}"
        hint = part_number(info["hint"])
        assert hint == numbers[-1] + 1, f"the hint {info['hint']} is not the part after {all_parts[-1]['uri']}"
    assert info["hint"] not in {p["uri"] for p in all_parts}, "the hint names a part that exists"
    return info


def last_part(info: dict) -> tuple[int, int]:
    """(msn, index) of the newest part listed."""
    if info["open"] is not None:
        return info["open"]["msn"], len(info["open"]["parts"]) - 1
    seg = info["segments"][-1]
    return seg["msn"], len(seg["parts"]) - 1


def next_part(info: dict) -> tuple[int, int]:
    """(msn, index) a blocking reload asks for to get the next part."""
    if info["open"] is not None:
        return info["open"]["msn"], len(info["open"]["parts"])
    return info["segments"][-1]["msn"] + 1, 0


def find_part(info: dict, msn: int, index: int):
    """The part at (msn, index), or None."""
    for seg in info["segments"] + ([info["open"]] if info["open"] else []):
        if seg["msn"] == msn:
            return seg["parts"][index] if index < len(seg["parts"]) else None
    return None
