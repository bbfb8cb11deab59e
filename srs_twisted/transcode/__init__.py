"""In-process transcoding (PyAV): audio for the RTMP <-> WebRTC bridge."""
