"""What a process holds, read from /proc (Linux): resident memory, open file descriptors, threads.

These are the three things a leak shows up in: memory kept per request, sockets or files never
closed, threads started and never joined.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the run started
    requests: int  # requests answered so far
    rss_bytes: int
    fds: int
    threads: int

    @property
    def rss_mib(self) -> float:
        return self.rss_bytes / 2**20

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rss_mib": round(self.rss_mib, 1)}


def sample(pid: int, at: float = 0.0, requests: int = 0) -> Sample:
    rss = threads = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Sample(at, requests, rss, fds, threads)
