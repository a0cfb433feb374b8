"""Network namespaces for the real-kernel lab and the kernel tests, with a cleanup registry.

Rules of the road, enforced here:
- every namespace is named `kplab-<pid>-<tag>-<name>`: the pid says which run owns it;
- veth pairs are created *inside* lab namespaces (`ip -n NS link add ... peer ... netns NS2`),
  so nothing ever appears in the host's namespace, not even for an instant;
- everything a `Lab` made is removed on exit, on error, on SIGINT and SIGTERM (the handler
  turns them into exceptions that unwind through `Lab.__exit__`); SIGKILL cannot be caught,
  so `reap_stale()` (called by every `Lab()`) removes namespaces whose owning pid is gone;
- no command here touches the host namespace: every iptables/sysctl/ip call runs through
  `ip netns exec` or `ip -n`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from types import FrameType, TracebackType

PREFIX = "kplab-"
_NAME = re.compile(r"^kplab-(\d+)-")
_counter = itertools.count()

REQUIRED_TOOLS = {
    "ip": "iproute2",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "iptables-restore": "iptables",
    "conntrack": "conntrack",
    "tcpdump": "tcpdump",
    "ethtool": "ethtool",
}


class LabUnavailable(Exception):
    """The lab cannot run here (not root, a tool missing). The message is one line saying why."""


def require(tools: Sequence[str] = tuple(REQUIRED_TOOLS)) -> None:
    """Raise LabUnavailable unless we are root and every tool is on PATH."""
    if os.geteuid() != 0:
        raise LabUnavailable("the real-kernel lab needs root (network namespaces, iptables, conntrack)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pkgs = sorted({REQUIRED_TOOLS.get(t, t) for t in missing})
        raise LabUnavailable(
            f"the real-kernel lab needs {', '.join(missing)}: install the Debian packages {' '.join(pkgs)}"
        )


def list_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_namespace(name: str) -> None:
    """Delete one lab namespace (its interfaces and conntrack table go with it)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to delete a namespace kplab did not make: {name}")
    # Kill anything still running inside so the namespace can actually go away.
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout
    for pid in pids.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def reap_stale() -> list[str]:
    """Remove namespaces left by earlier kplab runs whose process is gone. Returns their names."""
    reaped = []
    for name in list_namespaces():
        m = _NAME.match(name)
        if m and not _alive(int(m.group(1))):
            delete_namespace(name)
            reaped.append(name)
    return reaped


def clean_all() -> list[str]:
    """Remove every kplab namespace, whoever made it (`kplab lab clean`)."""
    names = [n for n in list_namespaces() if n.startswith(PREFIX)]
    for name in names:
        delete_namespace(name)
    return names


class Netns:
    """One lab namespace. `run` executes a command inside it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Netns({self.name})"

    def cmd(self, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(
        self, args: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.cmd(args), input=input, capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"in {self.name}: {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    def popen(self, args: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.cmd(args), **kwargs)  # type: ignore[call-overload, no-any-return]

    def sysctl(self, key: str, value: str | int) -> None:
        """Set a sysctl inside this namespace (per-netns keys only; never the host's)."""
        path = "/proc/sys/" + key.replace(".", "/")
        self.run(["sh", "-c", f"echo {value} > {path}"])

    def read(self, path: str) -> str:
        return self.run(["cat", path]).stdout


class Lab:
    """A set of namespaces owned by this process, removed when the `with` block ends."""

    def __init__(self, tag: str = "lab", owner_pid: int | None = None) -> None:
        """`owner_pid`: the process whose life the namespaces share (default: this one). `kplab lab
        up` passes a keeper process that outlives the command, so `reap_stale` leaves them alone."""
        require(("ip",))
        reap_stale()
        owner = os.getpid() if owner_pid is None else owner_pid
        self.prefix = f"{PREFIX}{owner}-{tag}{next(_counter)}-"
        self.namespaces: list[Netns] = []
        self._old_handlers: dict[int, object] = {}

    def __enter__(self) -> Lab:
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Outside the main thread signals cannot be caught: the caller's own cleanup applies.
            with contextlib.suppress(ValueError):
                self._old_handlers[sig] = signal.signal(sig, _raise_on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def netns(self, name: str) -> Netns:
        ns = Netns(self.prefix + name)
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True)
        self.namespaces.append(ns)
        ns.run(["ip", "link", "set", "lo", "up"])
        return ns

    def veth(self, a: Netns, a_if: str, b: Netns, b_if: str, *, offloads_off: bool = True) -> None:
        """A veth pair created directly inside the two lab namespaces, both ends up."""
        subprocess.run(
            ["ip", "-n", a.name, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name],
            check=True,
            capture_output=True,
        )
        for ns, ifname in ((a, a_if), (b, b_if)):
            ns.run(["ip", "link", "set", ifname, "up"])
            if offloads_off and shutil.which("ethtool"):
                ns.run(
                    [
                        "ethtool",
                        "-K",
                        ifname,
                        "tx",
                        "off",
                        "rx",
                        "off",
                        "tso",
                        "off",
                        "gso",
                        "off",
                        "gro",
                        "off",
                    ],
                    check=False,
                )

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            delete_namespace(ns.name)
        self.namespaces.clear()


class LabInterrupted(BaseException):
    """SIGTERM/SIGINT during a lab run: unwinds through cleanup, then the caller exits."""


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    raise LabInterrupted(f"signal {signum}")
