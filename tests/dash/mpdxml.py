"""Reading an MPD back in the tests: what each representation lists."""

from __future__ import annotations

import xml.etree.ElementTree as ET

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def parse_mpd(data: bytes) -> dict:
    """``{'root': MPD attributes, 'video'/'audio': {'rep': Representation
    attributes, 'template': SegmentTemplate attributes, 'start': startNumber,
    'timescale': ..., 'entries': [(t, d), ...]}}``."""
    root = ET.fromstring(data)
    out = {"root": dict(root.attrib)}
    for aset in root.findall("d:Period/d:AdaptationSet", NS):
        rep = aset.find("d:Representation", NS)
        template = rep.find("d:SegmentTemplate", NS)
        out[rep.get("id")] = {
            "rep": dict(rep.attrib),
            "template": dict(template.attrib),
            "start": int(template.get("startNumber")),
            "timescale": int(template.get("timescale")),
            "entries": [(int(s.get("t")), int(s.get("d"))) for s in template.findall("d:SegmentTimeline/d:S", NS)],
        }
    return out
