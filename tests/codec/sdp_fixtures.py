"""Real WebRTC offers for the SDP tests (CRLF is restored by ``crlf``).

- ``FFMPEG_WHIP_OFFER``: captured from FFmpeg n9.0.2's WHIP muxer (imageio-ffmpeg's
  binary, libx264 baseline + libopus), posted to a loopback HTTP listener.  Note
  ``a=setup:passive``, ``a=msid-semantic: WMS`` with nothing after it, an rtx
  payload type with its ``a=ssrc-group:FID`` and the baseline (not constrained)
  profile-level-id 42000d.
- ``AIORTC_OFFER``: captured from aiortc 1.16's ``setLocalDescription(createOffer())``
  with a sendonly audio and video transceiver (per-section transports, host
  candidates, three fingerprints, static payload types).
- ``CHROMIUM_OFFER``: a Chromium 13x WHIP publisher's offer after ICE gathering
  (sendonly camera and microphone, max codec list including H265 and AV1, red,
  rtx, ulpfec, transport-cc), reconstructed from Chromium's SDP layout because no
  Chromium runs on the build box; addresses are 10.99.0.1 as in the CI namespace.
"""


def crlf(text):
    return text.replace("\n", "\r\n")


FFMPEG_WHIP_OFFER = crlf("""\
v=0
o=FFmpeg 4489045141692799359 2 IN IP4 127.0.0.1
s=FFmpegPublishSession
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=ice-ufrag:6114c1fe
a=ice-pwd:9c649b8f1d483c6d12255d97981a5d2e
a=fingerprint:sha-256 27:5D:A2:52:80:05:97:25:86:CA:E3:41:FA:0C:46:EB:34:9F:E6:F9:77:DA:BF:F0:98:33:C9:26:6A:FD:A3:A8
a=setup:passive
a=mid:0
a=sendonly
a=msid:FFmpeg audio
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=ssrc:304538368 cname:FFmpeg
a=ssrc:304538368 msid:FFmpeg audio
m=video 9 UDP/TLS/RTP/SAVPF 106 105
c=IN IP4 0.0.0.0
a=ice-ufrag:6114c1fe
a=ice-pwd:9c649b8f1d483c6d12255d97981a5d2e
a=fingerprint:sha-256 27:5D:A2:52:80:05:97:25:86:CA:E3:41:FA:0C:46:EB:34:9F:E6:F9:77:DA:BF:F0:98:33:C9:26:6A:FD:A3:A8
a=setup:passive
a=mid:1
a=sendonly
a=msid:FFmpeg video
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:106 H264/90000
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42000d
a=rtcp-fb:106 nack
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=106
a=ssrc-group:FID 304538369 304538370
a=ssrc:304538369 cname:FFmpeg
a=ssrc:304538369 msid:FFmpeg video
""")

AIORTC_OFFER = crlf("""\
v=0
o=- 4005392745 4005392745 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic:WMS *
m=audio 47620 UDP/TLS/RTP/SAVPF 96 9 0 8
c=IN IP4 192.0.2.2
a=sendonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=mid:0
a=msid:be97b077-0d80-4186-beb2-7e6a2f20b8d3 b10b7acb-3146-4c71-a85d-92290d50fdcb
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc:68560741 cname:e2e22d3b-e26e-430b-ab2d-321febc875c7
a=rtpmap:96 opus/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=candidate:f957a2332b1715da3b0ef8ba684454eb 1 udp 2130706431 192.0.2.2 47620 typ host
a=candidate:d0bcf3d9c29a2bc887618212a1623bfa 1 udp 2130706431 fd00::2 36489 typ host
a=end-of-candidates
a=ice-ufrag:jvk8
a=ice-pwd:ZLlUewFXkXNnTYX1RMi1aZ
a=fingerprint:sha-256 A6:4C:99:97:98:D5:DD:ED:22:12:F5:21:18:35:FD:A5:B4:B9:03:4B:22:93:B5:77:08:2D:2B:6F:66:BF:28:30
a=fingerprint:sha-384 26:C3:11:42:B0:5E:41:3C:27:AA:CB:C4:66:4B:02:5E:87:C3:A9:E2:40:C9:59:89:2F:FD:2F:E2:79:45:3F:42:26:0E:1B:0B:8F:DA:8A:72:1A:2E:17:CA:60:58:02:F8
a=fingerprint:sha-512 18:46:E4:A6:E6:6E:CA:DA:9B:8A:95:4C:69:98:61:D6:6D:A7:6F:2A:26:9A:AA:D3:B7:2B:A2:E2:4D:6A:BA:B1:EF:C7:51:E2:D8:66:5A:4D:2A:7F:0E:CF:4C:4F:C4:30:36:DD:95:68:7F:64:E4:41:85:0A:8F:A1:CD:1B:8C:A6
a=setup:actpass
m=video 54687 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102
c=IN IP4 192.0.2.2
a=sendonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=mid:1
a=msid:be97b077-0d80-4186-beb2-7e6a2f20b8d3 29c706f5-67a6-434c-932c-fd2868af4086
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc-group:FID 2784901431 3931299165
a=ssrc:2784901431 cname:e2e22d3b-e26e-430b-ab2d-321febc875c7
a=ssrc:3931299165 cname:e2e22d3b-e26e-430b-ab2d-321febc875c7
a=rtpmap:97 VP8/90000
a=rtcp-fb:97 nack
a=rtcp-fb:97 nack pli
a=rtcp-fb:97 goog-remb
a=rtpmap:98 rtx/90000
a=fmtp:98 apt=97
a=rtpmap:99 H264/90000
a=rtcp-fb:99 nack
a=rtcp-fb:99 nack pli
a=rtcp-fb:99 goog-remb
a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:100 rtx/90000
a=fmtp:100 apt=99
a=rtpmap:101 H264/90000
a=rtcp-fb:101 nack
a=rtcp-fb:101 nack pli
a=rtcp-fb:101 goog-remb
a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:102 rtx/90000
a=fmtp:102 apt=101
a=candidate:f957a2332b1715da3b0ef8ba684454eb 1 udp 2130706431 192.0.2.2 54687 typ host
a=candidate:d0bcf3d9c29a2bc887618212a1623bfa 1 udp 2130706431 fd00::2 56481 typ host
a=end-of-candidates
a=ice-ufrag:jvk8
a=ice-pwd:ZLlUewFXkXNnTYX1RMi1aZ
a=fingerprint:sha-256 A6:4C:99:97:98:D5:DD:ED:22:12:F5:21:18:35:FD:A5:B4:B9:03:4B:22:93:B5:77:08:2D:2B:6F:66:BF:28:30
a=fingerprint:sha-384 26:C3:11:42:B0:5E:41:3C:27:AA:CB:C4:66:4B:02:5E:87:C3:A9:E2:40:C9:59:89:2F:FD:2F:E2:79:45:3F:42:26:0E:1B:0B:8F:DA:8A:72:1A:2E:17:CA:60:58:02:F8
a=fingerprint:sha-512 18:46:E4:A6:E6:6E:CA:DA:9B:8A:95:4C:69:98:61:D6:6D:A7:6F:2A:26:9A:AA:D3:B7:2B:A2:E2:4D:6A:BA:B1:EF:C7:51:E2:D8:66:5A:4D:2A:7F:0E:CF:4C:4F:C4:30:36:DD:95:68:7F:64:E4:41:85:0A:8F:A1:CD:1B:8C:A6
a=setup:actpass
""")

CHROMIUM_OFFER = crlf("""\
v=0
o=- 5919134936592164331 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS 8f4d3c2a-6b1e-4f7d-9a05-3c2e1d0b9a87
m=audio 51742 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 10.99.0.1
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:3427584925 1 udp 2122260223 10.99.0.1 51742 typ host generation 0 network-id 1
a=candidate:2210405729 1 tcp 1518280447 10.99.0.1 9 typ host tcptype active generation 0 network-id 1
a=ice-ufrag:Gx7q
a=ice-pwd:mY3k0X9a+Lq1w/ZpR8bV2nTc
a=ice-options:trickle
a=fingerprint:sha-256 63:C3:E6:9A:6A:8A:7E:5E:4A:E2:56:AE:69:28:FA:2E:44:72:4C:A6:0A:BD:77:1B:4C:84:D7:44:98:CC:20:C8
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=msid:8f4d3c2a-6b1e-4f7d-9a05-3c2e1d0b9a87 c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:2871933409 cname:q7LwHk3bZ2xV9eRt
a=ssrc:2871933409 msid:8f4d3c2a-6b1e-4f7d-9a05-3c2e1d0b9a87 c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f
m=video 38203 UDP/TLS/RTP/SAVPF 96 97 103 104 107 108 109 114 115 116 117 118 39 40 45 46 98 99 100 101 119 120 49 50 123 124 125
c=IN IP4 10.99.0.1
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1894021582 1 udp 2122260223 10.99.0.1 38203 typ host generation 0 network-id 1
a=candidate:744712766 1 tcp 1518280447 10.99.0.1 9 typ host tcptype active generation 0 network-id 1
a=ice-ufrag:Gx7q
a=ice-pwd:mY3k0X9a+Lq1w/ZpR8bV2nTc
a=ice-options:trickle
a=fingerprint:sha-256 63:C3:E6:9A:6A:8A:7E:5E:4A:E2:56:AE:69:28:FA:2E:44:72:4C:A6:0A:BD:77:1B:4C:84:D7:44:98:CC:20:C8
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:8f4d3c2a-6b1e-4f7d-9a05-3c2e1d0b9a87 5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:103 H264/90000
a=rtcp-fb:103 goog-remb
a=rtcp-fb:103 transport-cc
a=rtcp-fb:103 ccm fir
a=rtcp-fb:103 nack
a=rtcp-fb:103 nack pli
a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:104 rtx/90000
a=fmtp:104 apt=103
a=rtpmap:107 H264/90000
a=rtcp-fb:107 goog-remb
a=rtcp-fb:107 transport-cc
a=rtcp-fb:107 ccm fir
a=rtcp-fb:107 nack
a=rtcp-fb:107 nack pli
a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:108 rtx/90000
a=fmtp:108 apt=107
a=rtpmap:109 H264/90000
a=rtcp-fb:109 goog-remb
a=rtcp-fb:109 transport-cc
a=rtcp-fb:109 ccm fir
a=rtcp-fb:109 nack
a=rtcp-fb:109 nack pli
a=fmtp:109 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:114 rtx/90000
a=fmtp:114 apt=109
a=rtpmap:115 H264/90000
a=rtcp-fb:115 goog-remb
a=rtcp-fb:115 transport-cc
a=rtcp-fb:115 ccm fir
a=rtcp-fb:115 nack
a=rtcp-fb:115 nack pli
a=fmtp:115 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f
a=rtpmap:116 rtx/90000
a=fmtp:116 apt=115
a=rtpmap:117 H264/90000
a=rtcp-fb:117 goog-remb
a=rtcp-fb:117 transport-cc
a=rtcp-fb:117 ccm fir
a=rtcp-fb:117 nack
a=rtcp-fb:117 nack pli
a=fmtp:117 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f
a=rtpmap:118 rtx/90000
a=fmtp:118 apt=117
a=rtpmap:39 H264/90000
a=rtcp-fb:39 goog-remb
a=rtcp-fb:39 transport-cc
a=rtcp-fb:39 ccm fir
a=rtcp-fb:39 nack
a=rtcp-fb:39 nack pli
a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f
a=rtpmap:40 rtx/90000
a=fmtp:40 apt=39
a=rtpmap:45 AV1/90000
a=rtcp-fb:45 goog-remb
a=rtcp-fb:45 transport-cc
a=rtcp-fb:45 ccm fir
a=rtcp-fb:45 nack
a=rtcp-fb:45 nack pli
a=fmtp:45 level-idx=5;profile=0;tier=0
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
a=rtpmap:98 VP9/90000
a=rtcp-fb:98 goog-remb
a=rtcp-fb:98 transport-cc
a=rtcp-fb:98 ccm fir
a=rtcp-fb:98 nack
a=rtcp-fb:98 nack pli
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:100 VP9/90000
a=rtcp-fb:100 goog-remb
a=rtcp-fb:100 transport-cc
a=rtcp-fb:100 ccm fir
a=rtcp-fb:100 nack
a=rtcp-fb:100 nack pli
a=fmtp:100 profile-id=2
a=rtpmap:101 rtx/90000
a=fmtp:101 apt=100
a=rtpmap:119 H264/90000
a=rtcp-fb:119 goog-remb
a=rtcp-fb:119 transport-cc
a=rtcp-fb:119 ccm fir
a=rtcp-fb:119 nack
a=rtcp-fb:119 nack pli
a=fmtp:119 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f
a=rtpmap:120 rtx/90000
a=fmtp:120 apt=119
a=rtpmap:49 H265/90000
a=rtcp-fb:49 goog-remb
a=rtcp-fb:49 transport-cc
a=rtcp-fb:49 ccm fir
a=rtcp-fb:49 nack
a=rtcp-fb:49 nack pli
a=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST
a=rtpmap:50 rtx/90000
a=fmtp:50 apt=49
a=rtpmap:123 red/90000
a=rtpmap:124 rtx/90000
a=fmtp:124 apt=123
a=rtpmap:125 ulpfec/90000
a=ssrc-group:FID 1503281627 3945066218
a=ssrc:1503281627 cname:q7LwHk3bZ2xV9eRt
a=ssrc:1503281627 msid:8f4d3c2a-6b1e-4f7d-9a05-3c2e1d0b9a87 5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
a=ssrc:3945066218 cname:q7LwHk3bZ2xV9eRt
a=ssrc:3945066218 msid:8f4d3c2a-6b1e-4f7d-9a05-3c2e1d0b9a87 5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
""")
