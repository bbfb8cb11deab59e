"""WebRTC settings that need more than a typed field: the ICE candidate (issue 10 section 1).

``rtc_server.candidate`` is the address put in SDP answers.  As in SRS it may be:

* ``*`` (or ``0.0.0.0``): detect, i.e. use the host's non-loopback addresses of
  ``rtc_server.ip_family`` (see :func:`resolve_candidates`);
* an IPv4 or IPv6 address, or a DNS name (Firefox needs an address), optionally with a port
  (``192.168.3.11:18000``, ``[2001:db8::1]:18000``) that replaces the ``listen`` port;
* ``$NAME``: the value of the environment variable ``NAME``, or ``*`` when it is unset.

``SRS_RTC_SERVER_CANDIDATE`` overrides the file; it may itself be ``$NAME``, and when that
variable is unset the file's value is used (SRS's ``get_rtc_server_candidates``).

Which addresses go into an answer is decided per session at run time: a client's ``?eip=``
(or ``?candidate=``) comes first, then the API host the client used (``api_as_candidates``),
then the configured or detected addresses.  :func:`resolve_candidates` is that decision as a
pure function (SRS's ``discover_candidates``); the caller supplies the host's addresses and,
if it wants domain names resolved, a resolver.

Pure standard library, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Iterable, Mapping, NamedTuple

from .env import getenv

__all__ = [
    "Candidate",
    "DETECT",
    "expand_candidate",
    "candidate_problem",
    "black_hole_problem",
    "split_host_port",
    "resolve_candidates",
]

Env = Mapping[str, str] | None

#: Candidate values that mean "detect the host's addresses".
DETECT = ("*", "0.0.0.0")

# Addresses an API host name never contributes (SRS's localhost, 127.0.0.1, 0.0.0.0, ::).
_LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "0.0.0.0", "::"))
_VARIABLE = re.compile(r"\$[A-Za-z0-9_.]+$")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class Candidate(NamedTuple):
    """One ICE host candidate: ``port`` None means the ``listen`` port of the transport."""

    host: str
    port: int | None = None


def _variable_name(value: str) -> str:
    name = value[1:] if value.startswith("$") else value
    return name.upper().replace(".", "_")


def expand_candidate(configured: str | None, environ: Env) -> tuple[str, str | None]:
    """The effective ``rtc_server.candidate`` and the variable it came from (None: the file
    or the default), given the file's value (None or '' when absent)."""
    override = getenv("srs.rtc_server.candidate", environ)
    if override:
        if not override.startswith("$"):
            return override, "SRS_RTC_SERVER_CANDIDATE"
        value = getenv(override, environ)
        if value:
            return value, _variable_name(override)
    if not configured:
        return "*", None
    value = getenv(configured, environ)
    if value:
        return value, _variable_name(configured)
    if configured.startswith("$"):
        return "*", None
    return configured, None


def split_host_port(text: str) -> tuple[str, str | None]:
    """``host[:port]`` -> (host, port text or None); IPv6 in brackets when a port follows,
    a bare IPv6 address has no port."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            return text, None
        return host, (rest[1:] if rest.startswith(":") else (rest or None))
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``text`` is, or None when it is none."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host_problem(host: str) -> str | None:
    if _address(host) is not None:
        return None
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return f"{host!r} is neither an IP address nor a host name"
    if all(label.isdigit() for label in labels):
        return f"{host!r} is not an IPv4 address"
    return None


def _port_problem(port: str | None) -> str | None:
    if port is None:
        return None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not an integer in 1..65535"
    return None


def candidate_problem(text: str, allow_variable: bool = True) -> str | None:
    """Why ``text`` is not a candidate value (None when it is one)."""
    if text in DETECT:
        return None
    if text.startswith("$"):
        if allow_variable and _VARIABLE.match(text):
            return None
        return f"{text!r} is not a $VARIABLE name" if allow_variable else f"{text!r} is not an address"
    host, port = split_host_port(text)
    return _host_problem(host) or _port_problem(port)


def black_hole_problem(text: str) -> str | None:
    """Why ``text`` is not a ``black_hole.addr`` (SRS sends to an IPv4 ``ip:port``)."""
    host, port = split_host_port(text)
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return f"{text!r} is not an IPv4 ip:port"
    if port is None:
        return f"{text!r} has no port"
    return _port_problem(port)


def _candidate(text: str) -> Candidate:
    host, port = split_host_port(text)
    return Candidate(host, int(port) if port and port.isdigit() else None)


def _family_matches(address: ipaddress.IPv4Address | ipaddress.IPv6Address, family: str) -> bool:
    if family == "ipv4":
        return address.version == 4
    if family == "ipv6":
        return address.version == 6
    return True


def resolve_candidates(
    value: str,
    environ: Env,
    host_addresses: Iterable[str],
    *,
    ip_family: str = "ipv4",
    auto_detect: bool = True,
    eip: str = "",
    api_host: str = "",
    api_as_candidates: bool = True,
    keep_api_domain: bool = False,
    resolve_api_domain: bool = True,
    resolve: Callable[[str], str | None] | None = None,
) -> list[Candidate]:
    """The host candidates of one answer, in order, without duplicates (SRS's choice).

    ``value`` is ``rtc_server.candidate``, as written (``$NAME`` is expanded with
    ``environ``) or as loaded (already expanded: pass ``environ=None``).  ``host_addresses``
    are the host's interface addresses.  ``eip`` is the client's ``?eip=`` (``ip[:port]``),
    ``api_host`` the host name the client reached the API at; ``resolve`` maps a domain
    name to one address (None: domain names are not resolved).  Keyword options mirror
    ``rtc_server``'s directives of the same names (``auto_detect`` is
    ``use_auto_detect_network_ip``).

    1. ``eip``, when it is an address (anything else is ignored);
    2. the API host (``api_as_candidates``), unless it is local: an IP address as it is; a
       domain name itself with ``keep_api_domain``, its address with ``resolve_api_domain``;
    3. a configured address ends the list there; ``*``/``0.0.0.0`` goes on:
    4. with ``auto_detect``, every non-loopback host address of ``ip_family``;
    5. if the list is still empty, the first IPv4 host address, else the first address.
    """
    out: list[Candidate] = []

    def add(candidate: Candidate) -> None:
        if candidate not in out:
            out.append(candidate)

    if eip and candidate_problem(eip, allow_variable=False) is None and eip not in DETECT:
        add(_candidate(eip))
    if api_host and api_as_candidates and api_host not in _LOCAL_HOSTS:
        if _address(api_host) is not None:
            add(Candidate(api_host))
        else:
            if keep_api_domain:
                add(Candidate(api_host))
            if resolve_api_domain and resolve is not None:
                address = resolve(api_host)
                if address and address not in _LOCAL_HOSTS:
                    add(Candidate(address))

    configured = expand_candidate(value, environ)[0]
    if configured not in DETECT:
        add(_candidate(configured))
        return out

    addresses = [(text, address) for text in host_addresses if (address := _address(text)) is not None]
    if not addresses:
        return out
    if auto_detect:
        for text, address in addresses:
            if not address.is_loopback and _family_matches(address, ip_family):
                add(Candidate(text))
    if out:
        return out
    first_v4 = next((text for text, address in addresses if address.version == 4), None)
    add(Candidate(first_v4 if first_v4 is not None else addresses[0][0]))
    return out
