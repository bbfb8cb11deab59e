"""srs-twisted: a real-time video server on Twisted that speaks SRS's interfaces."""

__version__ = "0.1.0"
# The SRS version whose interfaces (API, callbacks, config) we follow.
SRS_COMPAT_VERSION = (7, 0, 18)
SERVER_NAME = "srs-twisted"
