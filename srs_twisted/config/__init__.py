"""SRS-compatible configuration: parse, rewrite legacy layouts, check, and type.

Typical use::

    from srs_twisted.config import load, ConfigError
    cfg = load("conf/srs.conf")          # SrsConfig, SRS_* overrides applied
    vhost = cfg.vhost("example.com")     # falls back to __defaultVhost__

Pure standard library: nothing here imports Twisted.  See docs/config.md.
"""

from .caster import CASTER_KINDS, SipConfig, StreamCasterConfig
from .check import check
from .env import env_name, env_value
from .model import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_VHOST,
    ClusterConfig,
    DvrConfig,
    EngineConfig,
    HlsConfig,
    HttpApiConfig,
    HttpHooksConfig,
    HttpServerConfig,
    IngestConfig,
    PlayConfig,
    PublishConfig,
    RtcConfig,
    RtcServerConfig,
    SrsConfig,
    SrtServerConfig,
    TranscodeConfig,
    VhostConfig,
    build,
    load,
    load_string,
)
from .parser import ConfigError, Directive, parse_file, parse_string
from .transform import transform

__all__ = [
    "ConfigError",
    "Directive",
    "parse_string",
    "parse_file",
    "transform",
    "check",
    "env_name",
    "env_value",
    "load",
    "load_string",
    "build",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_VHOST",
    "SrsConfig",
    "VhostConfig",
    "PlayConfig",
    "PublishConfig",
    "HttpApiConfig",
    "HttpServerConfig",
    "HttpHooksConfig",
    "ClusterConfig",
    "HlsConfig",
    "DvrConfig",
    "RtcConfig",
    "RtcServerConfig",
    "SrtServerConfig",
    "IngestConfig",
    "TranscodeConfig",
    "EngineConfig",
    "StreamCasterConfig",
    "SipConfig",
    "CASTER_KINDS",
]
