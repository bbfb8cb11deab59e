"""MPEG-DASH: the MPD and its file names (``mpd``, sans-I/O), the recorder
that writes a stream's init and media segments and its MPD (``writer``) and
the registry observer that starts recorders (``service``)."""
