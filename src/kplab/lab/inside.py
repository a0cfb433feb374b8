"""Enter a lab namespace from this thread (setns(2)): sockets and files opened inside stay bound to it."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

from kplab.lab.netns import Netns

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(ns: Netns) -> Iterator[None]:
    """Run the block with this thread in `ns`, then return to the thread's own namespace."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns.name} failed")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")
    finally:
        os.close(home)
        os.close(target)
