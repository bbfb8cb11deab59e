"""The ``twistd srs`` plugin (no __init__.py in twisted/plugins/)."""

from twisted.application.service import ServiceMaker

srs = ServiceMaker(
    "srs-twisted",
    "srs_twisted.tap",
    "An SRS-compatible live video server (RTMP, HTTP-FLV, HLS...)",
    "srs",
)
