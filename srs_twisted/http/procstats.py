"""Process and system statistics read from /proc, in the shapes of SRS's API.

SRS samples these on timers; here a :class:`ProcStats` samples when asked,
at most once per ``min_interval`` seconds, and works out CPU and disk rates
against its previous sample.  The parsers are pure functions over the text
of one /proc file, so they can be tested with fixtures; where /proc is
missing (not Linux) every reader answers ``ok: False`` with zeros.
"""

from __future__ import annotations

import ipaddress
import os
import resource
import time
from typing import Callable

# /proc/self/stat fields after ``pid comm state``, in file order (proc(5)).
SELF_STAT_FIELDS = (
    "ppid", "pgrp", "session", "tty_nr", "tpgid", "flags", "minflt", "cminflt", "majflt",
    "cmajflt", "utime", "stime", "cutime", "cstime", "priority", "nice", "num_threads",
    "itrealvalue", "starttime", "vsize", "rss", "rsslim", "startcode", "endcode",
    "startstack", "kstkesp", "kstkeip", "signal", "blocked", "sigignore", "sigcatch",
    "wchan", "nswap", "cnswap", "exit_signal", "processor", "rt_priority", "policy",
    "delayacct_blkio_ticks", "guest_time", "cguest_time",
)
# The "cpu " line of /proc/stat, without guest_nice (as SRS reads it).
CPU_FIELDS = ("user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal", "guest")
MEMINFO_FIELDS = ("MemTotal", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree")
RUSAGE_FIELDS = (
    "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt", "ru_nswap",
    "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw",
)


def _ints(words) -> list[int]:
    out = []
    for w in words:
        try:
            out.append(int(w))
        except ValueError:
            out.append(0)
    return out


# ---- parsers ----------------------------------------------------------------------------


def parse_self_stat(text: str) -> dict:
    """/proc/<pid>/stat -> pid, comm (with its parentheses, as SRS prints it), state, then
    :data:`SELF_STAT_FIELDS`."""
    head, _, tail = text.rpartition(")")
    pid, _, comm = head.partition("(")
    words = tail.split()
    out: dict = {"pid": int(pid.strip() or 0), "comm": f"({comm})", "state": words[0] if words else "0"}
    values = _ints(words[1:]) + [0] * len(SELF_STAT_FIELDS)
    out.update(zip(SELF_STAT_FIELDS, values))
    return out


def parse_cpu_stat(text: str) -> dict:
    """The aggregate ``cpu`` line of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = _ints(line.split()[1:]) + [0] * len(CPU_FIELDS)
            return dict(zip(CPU_FIELDS, values))
    return dict.fromkeys(CPU_FIELDS, 0)


def parse_meminfo(text: str) -> dict:
    """/proc/meminfo (kB) -> the fields SRS reads plus its derived ones."""
    m = dict.fromkeys(MEMINFO_FIELDS, 0)
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in m:
            words = rest.split()
            m[key] = _ints(words[:1])[0] if words else 0
    active = m["MemTotal"] - m["MemFree"]
    real = active - m["Buffers"] - m["Cached"]
    m["MemActive"] = active
    m["RealInUse"] = real
    m["NotInUse"] = m["MemTotal"] - real
    m["percent_ram"] = real / m["MemTotal"] if m["MemTotal"] > 0 else 0.0
    m["percent_swap"] = (
        (m["SwapTotal"] - m["SwapFree"]) / m["SwapTotal"] if m["SwapTotal"] > 0 else 0.0
    )
    return m


def parse_uptime(text: str) -> tuple[float, float]:
    words = text.split()
    try:
        return float(words[0]), float(words[1])
    except (IndexError, ValueError):
        return 0.0, 0.0


def parse_loadavg(text: str) -> tuple[float, float, float]:
    words = text.split()
    try:
        return float(words[0]), float(words[1]), float(words[2])
    except (IndexError, ValueError):
        return 0.0, 0.0, 0.0


def parse_vmstat(text: str) -> tuple[int, int]:
    """pgpgin, pgpgout (KB paged in/out since boot)."""
    values = {"pgpgin": 0, "pgpgout": 0}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in values:
            values[words[0]] = _ints(words[1:])[0]
    return values["pgpgin"], values["pgpgout"]


def parse_diskstats_ticks(text: str, devices) -> int:
    """The sum of the io-ticks column (ms spent doing I/O) for the named devices."""
    wanted = set(devices)
    ticks = 0
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 13 and words[2] in wanted:
            ticks += _ints(words[12:13])[0]
    return ticks


def parse_net_dev(text: str) -> list[tuple[str, int, int]]:
    """/proc/net/dev -> (interface, received bytes, sent bytes)."""
    out = []
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        words = _ints(rest.split())
        if len(words) >= 9:
            out.append((name.strip(), words[0], words[8]))
    return out


def parse_sockstat(text: str) -> dict:
    """/proc/net/sockstat -> SRS's conn_sys (TCP alloc + time-wait), tw and UDP in use."""
    tcp = {"alloc": 0, "tw": 0}
    udp = 0
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        pairs = dict(zip(words[1::2], _ints(words[2::2])))
        if words[0] == "TCP:":
            tcp = {"alloc": pairs.get("alloc", 0), "tw": pairs.get("tw", 0)}
        elif words[0] == "UDP:":
            udp = pairs.get("inuse", 0)
    return {"conn_sys": tcp["alloc"] + tcp["tw"], "conn_sys_tw": tcp["tw"], "conn_sys_udp": udp}


def parse_snmp_tcp_estab(text: str) -> int:
    """CurrEstab from the Tcp lines of /proc/net/snmp."""
    lines = [line.split() for line in text.splitlines() if line.startswith("Tcp:")]
    if len(lines) >= 2 and "CurrEstab" in lines[0]:
        i = lines[0].index("CurrEstab")
        if i < len(lines[1]):
            return _ints(lines[1][i : i + 1])[0]
    return 0


def parse_fib_trie_local(text: str) -> list[str]:
    """The IPv4 addresses /proc/net/fib_trie marks ``/32 host LOCAL``."""
    found: list[str] = []
    last = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last = stripped[3:].strip()
        elif last and stripped.startswith("/32") and stripped.endswith("LOCAL"):
            if last not in found:
                found.append(last)
            last = None
    return found


def parse_route(text: str) -> list[tuple[str, int, int]]:
    """/proc/net/route -> (interface, destination, mask), as host-order integers."""
    out = []
    for line in text.splitlines()[1:]:
        words = line.split()
        if len(words) < 8:
            continue
        try:
            dest = int.from_bytes(bytes.fromhex(words[1]), "little")
            mask = int.from_bytes(bytes.fromhex(words[7]), "little")
        except ValueError:
            continue
        out.append((words[0], dest, mask))
    return out


def parse_if_inet6(text: str) -> list[tuple[str, str]]:
    """/proc/net/if_inet6 -> (interface, address)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 6 and len(words[0]) == 32:
            try:
                addr = str(ipaddress.IPv6Address(bytes.fromhex(words[0])))
            except ValueError:
                continue
            out.append((words[5], addr))
    return out


def is_internet(address: str) -> bool:
    """SRS's test for a public address: IPv4 outside loopback and RFC 1918, IPv6 outside
    loopback, unspecified, link-local, site-local and multicast."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 4:
        value = int(ip)
        return not (
            0x7F000000 <= value <= 0x7F000001
            or 0x0A000000 <= value <= 0x0AFFFFFF
            or 0xAC100000 <= value <= 0xAC1FFFFF
            or 0xC0A80000 <= value <= 0xC0A8FFFF
        )
    return not (
        ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_site_local or ip.is_multicast
    )


def internet_devices(fib_trie: str, route: str, if_inet6: str) -> set[str]:
    """Interfaces with at least one public address (lo never counts)."""
    routes = sorted(parse_route(route), key=lambda r: -r[2])
    names: set[str] = set()
    for address in parse_fib_trie_local(fib_trie):
        if not is_internet(address):
            continue
        value = int(ipaddress.IPv4Address(address))
        for iface, dest, mask in routes:
            if mask and value & mask == dest:
                names.add(iface)
                break
    for iface, address in parse_if_inet6(if_inet6):
        if is_internet(address):
            names.add(iface)
    names.discard("lo")
    return names


# ---- sampling ---------------------------------------------------------------------------


class ProcStats:
    """Reads /proc under ``root``; rates are measured between consecutive samples taken
    at least ``min_interval`` seconds apart (a quicker reader gets the last sample)."""

    def __init__(self, root: str = "/proc", now: Callable[[], float] = time.time,
                 min_interval: float = 1.0, disk_devices=()) -> None:
        self.root = root
        self.now = now
        self.min_interval = min_interval
        self.disk_devices = tuple(disk_devices)
        self.user_hz = _sysconf("SC_CLK_TCK", 100)
        self._self: dict | None = None
        self._system: dict | None = None
        self._disk: dict | None = None
        self._devices: set[str] | None = None

    def _read(self, *parts: str) -> str | None:
        try:
            with open(os.path.join(self.root, *parts), encoding="ascii", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def _ms(self) -> int:
        return int(self.now() * 1000)

    def _fresh(self, sample: dict | None) -> bool:
        return sample is not None and self._ms() - sample["sample_time"] < self.min_interval * 1000

    # /api/v1/self_proc_stats
    def self_stat(self) -> dict:
        if self._fresh(self._self):
            return self._self
        text = self._read("self", "stat")
        now = self._ms()
        if text is None:
            r = {"ok": False, "sample_time": now, "percent": 0.0, "pid": os.getpid(), "comm": "",
                 "state": "0"}
            r.update(dict.fromkeys(SELF_STAT_FIELDS, 0))
            return r
        stat = parse_self_stat(text)
        old = self._self
        percent = 0.0
        if old is not None and old["ok"] and now > old["sample_time"]:
            usage = stat["utime"] + stat["stime"] - old["utime"] - old["stime"]
            percent = usage * 1000 / (now - old["sample_time"]) / self.user_hz
        r = {"ok": True, "sample_time": now, "percent": percent}
        r.update(stat)
        self._self = r
        return r

    # /api/v1/system_proc_stats
    def system_stat(self) -> dict:
        if self._fresh(self._system):
            return self._system
        text = self._read("stat")
        now = self._ms()
        if text is None:
            return {"ok": False, "sample_time": now, "percent": 0.0, **dict.fromkeys(CPU_FIELDS, 0)}
        cpu = parse_cpu_stat(text)
        old = self._system
        percent = 0.0
        if old is not None and old["ok"]:
            total = sum(cpu[k] for k in CPU_FIELDS) - sum(old[k] for k in CPU_FIELDS)
            if total > 0:
                percent = 1 - (cpu["idle"] - old["idle"]) / total
        r = {"ok": True, "sample_time": now, "percent": percent}
        r.update(cpu)
        self._system = r
        return r

    # /api/v1/meminfos
    def meminfo(self) -> dict:
        text = self._read("meminfo")
        m = parse_meminfo(text or "")
        return {"ok": text is not None, "sample_time": self._ms(), **m}

    # /api/v1/rusages
    def rusage(self) -> dict:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        r = {"ok": True, "sample_time": self._ms(), "ru_utime": int(ru.ru_utime),
             "ru_stime": int(ru.ru_stime)}
        r.update((name, int(getattr(ru, name))) for name in RUSAGE_FIELDS)
        return r

    def cpus(self) -> tuple[int, int]:
        """Processors configured and online."""
        count = os.cpu_count() or 0
        return _sysconf("SC_NPROCESSORS_CONF", count), _sysconf("SC_NPROCESSORS_ONLN", count)

    def platform(self) -> dict:
        uptime = self._read("uptime")
        loadavg = self._read("loadavg")
        up, idle = parse_uptime(uptime or "")
        one, five, fifteen = parse_loadavg(loadavg or "")
        return {"ok": uptime is not None and loadavg is not None, "uptime": up, "ilde_time": idle,
                "load_1m": one, "load_5m": five, "load_15m": fifteen}

    def disk(self) -> dict:
        """Paging rates (KB/s) from /proc/vmstat and, for ``disk_devices``, the busy
        fraction from /proc/diskstats."""
        if self._fresh(self._disk):
            return self._disk
        vmstat = self._read("vmstat")
        if vmstat is None:
            return {"ok": False, "sample_time": self._ms(), "in_KBps": 0, "out_KBps": 0, "busy": 0.0}
        pgin, pgout = parse_vmstat(vmstat)
        ticks = 0
        if self.disk_devices:
            ticks = parse_diskstats_ticks(self._read("diskstats") or "", self.disk_devices)
        cpu_total = sum(parse_cpu_stat(self._read("stat") or "").values())
        r = {"ok": True, "sample_time": self._ms(), "pgpgin": pgin, "pgpgout": pgout,
             "ticks": ticks, "cpu_total": cpu_total, "in_KBps": 0, "out_KBps": 0, "busy": 0.0}
        old = self._disk
        if old is not None:
            ms = r["sample_time"] - old["sample_time"]
            if ms > 0 and old["pgpgin"] and pgin > old["pgpgin"]:
                r["in_KBps"] = (pgin - old["pgpgin"]) * 1000 // ms
            if ms > 0 and old["pgpgout"] and pgout > old["pgpgout"]:
                r["out_KBps"] = (pgout - old["pgpgout"]) * 1000 // ms
            cpus = self.cpus()[0]
            delta = cpu_total - old["cpu_total"]
            if delta > 0 and cpus > 0 and ticks > old["ticks"]:
                # jiffies of all CPUs -> ms of one, as SRS (and iostat) do.
                r["busy"] = (ticks - old["ticks"]) / (delta * 1000 / self.user_hz / cpus)
        self._disk = r
        return r

    def network(self) -> dict:
        """Bytes through public (``net_*``) and private (``net_*i``) interfaces."""
        text = self._read("net", "dev")
        r = {"ok": text is not None, "net_sample_time": self._ms() if text is not None else 0,
             "net_recv_bytes": 0, "net_send_bytes": 0, "net_recvi_bytes": 0, "net_sendi_bytes": 0}
        if text is None:
            return r
        if self._devices is None:
            self._devices = internet_devices(
                self._read("net", "fib_trie") or "", self._read("net", "route") or "",
                self._read("net", "if_inet6") or "",
            )
        for name, recv, send in parse_net_dev(text):
            if name in self._devices:
                r["net_recv_bytes"] += recv
                r["net_send_bytes"] += send
            else:
                r["net_recvi_bytes"] += recv
                r["net_sendi_bytes"] += send
        return r

    def connections(self) -> dict:
        """The system's socket counts, as SRS's summaries report them."""
        sockstat = self._read("net", "sockstat")
        snmp = self._read("net", "snmp")
        r = parse_sockstat(sockstat or "")
        r["conn_sys_et"] = parse_snmp_tcp_estab(snmp or "")
        r["ok"] = sockstat is not None and snmp is not None
        return r


def _sysconf(name: str, default: int) -> int:
    try:
        value = os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        return default
    return value if value > 0 else default
