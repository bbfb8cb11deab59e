"""The one media packet model that flows through the live core.

A packet's payload is an FLV tag body (what RTMP carries in an audio, video
or data message), whatever protocol it came in on.  Outputs turn packets into
their own wire form through :meth:`MediaPacket.wire`, which computes each form
once and shares the bytes between every player that uses that form.
"""

from __future__ import annotations

from typing import Callable, Hashable

AUDIO = 8
VIDEO = 9
DATA = 18

KIND_NAMES = {AUDIO: "audio", VIDEO: "video", DATA: "data"}


class MediaPacket:
    """One audio frame, video frame or script-data message.

    ``dts``/``pts`` are milliseconds.  ``keyframe`` marks a video random access
    point, ``sequence_header`` a codec configuration packet (AVC/HEVC decoder
    configuration record, AAC AudioSpecificConfig...), ``metadata`` an
    onMetaData packet.
    """

    __slots__ = (
        "kind",
        "codec",
        "dts",
        "pts",
        "keyframe",
        "sequence_header",
        "payload",
        "prev_index",
        "prev_dts",
        "_wire",
    )

    def __init__(
        self,
        kind: int,
        dts: int,
        payload: bytes,
        *,
        codec: str = "",
        pts: int | None = None,
        keyframe: bool = False,
        sequence_header: bool = False,
    ) -> None:
        self.kind = kind
        self.codec = codec
        self.dts = dts
        self.pts = dts if pts is None else pts
        self.keyframe = keyframe
        self.sequence_header = sequence_header
        self.payload = payload
        # Set by the ring that holds the packet: the absolute ring index and
        # dts of the previous packet of the same kind (-1 when there is none).
        # A player that received that packet can take this one in a form
        # relative to it (RTMP fmt 1), which is the same for every player.
        self.prev_index = -1
        self.prev_dts = 0
        self._wire: dict | None = None

    @property
    def is_audio(self) -> bool:
        return self.kind == AUDIO

    @property
    def is_video(self) -> bool:
        return self.kind == VIDEO

    @property
    def is_data(self) -> bool:
        return self.kind == DATA

    def wire(self, key: Hashable, encode: Callable[["MediaPacket"], bytes]) -> bytes:
        """Return this packet's wire form for ``key``, encoding it at most once."""
        cache = self._wire
        if cache is None:
            cache = self._wire = {}
        else:
            data = cache.get(key)
            if data is not None:
                return data
        data = cache[key] = encode(self)
        return data

    def retimed(self, dts: int) -> "MediaPacket":
        """A copy of this packet moved to ``dts`` (pts keeps its offset)."""
        return MediaPacket(
            self.kind,
            dts,
            self.payload,
            codec=self.codec,
            pts=dts + (self.pts - self.dts),
            keyframe=self.keyframe,
            sequence_header=self.sequence_header,
        )

    def __len__(self) -> int:
        return len(self.payload)

    def __repr__(self) -> str:
        flags = "".join(
            f
            for f, on in (("K", self.keyframe), ("S", self.sequence_header))
            if on
        )
        return (
            f"<MediaPacket {KIND_NAMES.get(self.kind, self.kind)} {self.codec} "
            f"dts={self.dts} pts={self.pts} {flags} {len(self.payload)}B>"
        )
