"""HLS: a sans-I/O segmenter (``segmenter``), the recorder that writes its
files (``writer``) and the registry observer that starts recorders
(``service``).  Importing this package pulls in no Twisted."""
