"""The kernel release (`uname -r`) and the conntrack era it belongs to.

Linux 6.1 (commit 6e250dcbff1d, "netfilter: conntrack: ignore overly delayed tcp packets") turned
two of the four TCP window-check failures, SEQ under the lower bound (old duplicates) and ACK under
the lower bound (overly delayed ACKs), from INVALID into IGNORE: such a packet keeps its conntrack
entry and is NATed. Older kernels mark them INVALID, which is the blog's trigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kplab.errors import InputError

_RELEASE = re.compile(r"^(\d{1,3})\.(\d{1,3})(?:[.\-+~_][0-9A-Za-z.\-+~_]*)?$")
IGNORE_ERA = (6, 1)


@dataclass(frozen=True, slots=True)
class KernelRelease:
    text: str
    major: int
    minor: int

    @property
    def ignores_old_segments(self) -> bool:
        """True from 6.1: old duplicates and overly delayed ACKs are IGNOREd, not INVALID."""
        return (self.major, self.minor) >= IGNORE_ERA


def parse_release(text: str, where: str = "--uname") -> KernelRelease:
    release = text.strip()
    m = _RELEASE.match(release)
    if m is None:
        raise InputError(f"{where}: not a kernel release like 5.4.0-150-generic: {release[:60]!r}")
    return KernelRelease(release, int(m.group(1)), int(m.group(2)))
