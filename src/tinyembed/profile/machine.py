"""What the machine is: cores, caches and copy bandwidth, the roof of the roofline.

Caches come from Linux sysfs, one directory per cache of a CPU::

    /sys/devices/system/cpu/cpu0/cache/index0/  level=1 type=Data size=32K
        ways_of_associativity=8 coherency_line_size=64 number_of_sets=64 shared_cpu_list=0

Instruction caches are left out: embedding lookups only move data. Bandwidth is
:func:`tinyembed.profile.timing.copy_bandwidth` (``np.copyto`` of a large array, bytes read plus
bytes written), measured with one thread and with every usable core; the rest of
:class:`MachineInfo` is :func:`tinyembed.profile.timing.machine_info`.

Examples:
    >>> levels = read_cache_levels("/no/such/sysfs")   # no sysfs (not Linux): no caches
    >>> levels
    []
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..checks import check_int, check_positive_int
from . import timing

__all__ = ["CacheLevel", "MachineInfo", "SYSFS_CACHE_ROOT", "measure_machine", "parse_cache_size",
           "read_cache_levels"]

SYSFS_CACHE_ROOT = "/sys/devices/system/cpu/cpu0/cache"

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True)
class CacheLevel:
    """One data (or unified) cache of a CPU, as sysfs describes it.

    Args:
        level: 1 for L1, 2 for L2, ...
        type: 'Data' or 'Unified'.
        size_bytes: capacity in bytes.
        line_bytes: bytes of one cache line (coherency_line_size).
        ways: associativity; ``size_bytes // (line_bytes * ways)`` sets.
        sets: number of sets as sysfs reports it.
        shared_cpu_list: the CPUs sharing this cache, e.g. '0' or '0-1'.
    """

    level: int
    type: str
    size_bytes: int
    line_bytes: int
    ways: int
    sets: int
    shared_cpu_list: str

    @property
    def name(self) -> str:
        """'L1d', 'L2', 'L3': the name lscpu gives."""
        return f"L{self.level}" + ("d" if self.type == "Data" else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "name": self.name}


def parse_cache_size(text: str, source: str = "size") -> int:
    """Bytes of a sysfs cache size: '32K' -> 32768, '32768K' -> 33554432, '1M', '512'.

    ``source`` names the file in the error raised for anything else.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"{source}: cannot read a cache size from {text!r} (expected e.g. '32K')")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def _read(directory: Path, name: str) -> str | None:
    try:
        return (directory / name).read_text().strip()
    except FileNotFoundError:
        return None


def _read_int(directory: Path, name: str) -> int | None:
    text = _read(directory, name)
    return None if text is None else _to_int(directory, name, text)


def _to_int(directory: Path, name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{directory / name}: expected an integer, got {text!r}") from None


def _read_cache(directory: Path) -> CacheLevel | None:
    """One index* directory; None for an instruction cache."""
    found = {name: _read(directory, name) for name in ("level", "type", "size", "coherency_line_size")}
    missing = [name for name, text in found.items() if text is None]
    if missing:
        raise ValueError(f"{directory}: missing {', '.join(missing)}")
    required = {name: text for name, text in found.items() if text is not None}  # every one, now
    kind = required["type"]
    if kind == "Instruction":
        return None
    if kind not in ("Data", "Unified"):
        raise ValueError(f"{directory / 'type'}: unknown cache type {kind!r}")
    level = _to_int(directory, "level", required["level"])
    size = parse_cache_size(required["size"], str(directory / "size"))
    line = _to_int(directory, "coherency_line_size", required["coherency_line_size"])
    for name, value in (("level", level), ("size", size), ("coherency_line_size", line)):
        if value <= 0:  # before dividing by the line size below
            raise ValueError(f"{directory / name}: must be > 0, got {value}")
    ways = _read_int(directory, "ways_of_associativity")
    sets = _read_int(directory, "number_of_sets")
    # Some kernels leave one of the two out; the other follows from size = sets * ways * line.
    if ways is None and sets:
        ways = size // (sets * line)
    if sets is None and ways:
        sets = size // (ways * line)
    if ways is None or sets is None:
        raise ValueError(f"{directory}: needs ways_of_associativity or number_of_sets")
    return CacheLevel(level=level, type=kind, size_bytes=size, line_bytes=line, ways=ways, sets=sets,
                      shared_cpu_list=_read(directory, "shared_cpu_list") or "")


def read_cache_levels(root: str | os.PathLike = SYSFS_CACHE_ROOT) -> list[CacheLevel]:
    """The data and unified caches of one CPU, L1 first.

    Args:
        root: a sysfs ``cpuN/cache`` directory (holding ``index0``, ``index1``, ...).

    Returns:
        One :class:`CacheLevel` per data or unified cache, sorted by level; ``[]`` when
        ``root`` does not exist (not Linux, or a container that hides sysfs).

    Raises:
        ValueError: a file holds something that is not what sysfs writes there (the
            message names the file), or a cache directory lacks level, type, size or
            coherency_line_size.
    """
    root = Path(root)
    if not root.is_dir():
        return []

    def index_number(path: Path) -> int:
        return int(path.name[len("index"):])

    directories = sorted((p for p in root.glob("index*") if p.name[len("index"):].isdigit()),
                         key=index_number)
    caches = [c for c in map(_read_cache, directories) if c is not None]
    return sorted(caches, key=lambda c: c.level)  # sorted() is stable: index order within a level


@dataclass
class MachineInfo:
    """The machine a profile ran on.

    ``copy_gbps_one_thread`` and ``copy_gbps_all_cores`` count bytes read plus bytes
    written per second (as ``bench.bytes_moved`` does), copying ``copy_bytes`` bytes.
    """

    cores: int | None
    usable_cores: int
    cpu_model: str
    memory_bytes: int | None
    caches: list[CacheLevel]
    copy_gbps_one_thread: float
    copy_gbps_all_cores: float
    copy_bytes: int
    numpy: str
    details: dict = field(default_factory=dict)  # the rest of timing.machine_info: SIMD, platform, ...

    @property
    def peak_gbps(self) -> float:
        """The best copy bandwidth measured: on a 2-core VM two threads are sometimes slower than one."""
        return max(self.copy_gbps_one_thread, self.copy_gbps_all_cores)

    def cache(self, level: int) -> CacheLevel | None:
        """The data or unified cache of ``level``, None when there is none."""
        return next((c for c in self.caches if c.level == level), None)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["caches"] = [c.to_dict() for c in self.caches]
        out["peak_gbps"] = self.peak_gbps
        return out


def measure_machine(copy_bytes: int = 256 << 20, repeats: int = 5,
                    cache_root: str | os.PathLike = SYSFS_CACHE_ROOT) -> MachineInfo:
    """Describe this machine and measure its copy bandwidth.

    Args:
        copy_bytes: bytes of the array copied (two arrays of this size are allocated);
            it must be far larger than the last-level cache to measure memory, not cache.
        repeats: timed copies per thread count; the median is kept.
        cache_root: where to read the caches from (see :func:`read_cache_levels`).

    Returns:
        A :class:`MachineInfo`. With one usable core the all-cores bandwidth is the
        one-thread measurement (measured once).
    """
    check_int(copy_bytes, "copy_bytes", low=8)
    check_positive_int(repeats, "repeats")
    caches = read_cache_levels(cache_root)
    info = timing.machine_info(threads=1)
    usable = int(info["usable_cores"] or 1)
    one = timing.copy_bandwidth(int(copy_bytes), 1, repeats=int(repeats))
    every = one if usable == 1 else timing.copy_bandwidth(int(copy_bytes), usable, repeats=int(repeats))
    # threads and torch describe a benchmark run, not the machine
    details = {k: v for k, v in info.items() if k not in (
        "cores", "usable_cores", "cpu_model", "memory_bytes", "numpy", "threads", "torch")}
    return MachineInfo(cores=info["cores"], usable_cores=usable, cpu_model=info["cpu_model"],
                       memory_bytes=info["memory_bytes"], caches=caches, copy_gbps_one_thread=one,
                       copy_gbps_all_cores=every, copy_bytes=int(copy_bytes), numpy=info["numpy"],
                       details=details)
