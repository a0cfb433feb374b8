"""Network namespaces for the real-kernel lab and the kernel tests, with a cleanup registry.

Rules of the road, enforced here:
- every namespace is named `kplab-<pid>-<tag>-<name>`: the pid says which run owns it;
- veth pairs are created *inside* lab namespaces (`ip -n NS link add ... peer ... netns NS2`),
  so nothing ever appears in the host's namespace, not even for an instant;
- everything a `Lab` made is removed on exit, on error, on SIGINT and SIGTERM (the handler
  turns the first into an exception that unwinds through `Lab.__exit__`; later ones, an impatient
  second Ctrl-C, are held until the cleanup is done, and the cleanup's own commands run in their
  own session, out of the terminal's reach); what is left afterwards is listed, not assumed;
  SIGKILL cannot be caught, so `reap_stale()` (called by every `Lab()`) removes namespaces whose
  owning pid is gone;
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
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType

PREFIX = "kplab-"
_NAME = re.compile(r"^kplab-(\d+)-")
_RESEND_S = 0.01  # a signal dropped inside a finalizer is sent again this much later
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
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False,
                         start_new_session=True).stdout  # fmt: skip
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def owned_by(prefix: str) -> list[str]:
    """The namespaces whose names start with `prefix` (`kplab-<pid>-`: everything a run made)."""
    return [n for n in list_namespaces() if n.startswith(prefix)]


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
    # Its own session: a Ctrl-C at the terminal reaches the whole foreground group, not these.
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False,
                          start_new_session=True).stdout  # fmt: skip
    for pid in pids.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False, start_new_session=True)


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
    """Remove every kplab namespace, whoever made it, live runs too (`kplab lab clean --all`)."""
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
        self._held: list[int] = []  # signals that arrived while cleaning up
        self._old_unraisable: Callable[[sys.UnraisableHookArgs], object] | None = None
        self._resend: threading.Timer | None = None

    def __enter__(self) -> Lab:
        self.catch_signals()
        return self

    def catch_signals(self) -> None:
        """From now on SIGINT/SIGTERM unwind the run as `LabInterrupted` (what `with Lab()` does; a
        lab that outlives the call, as `lab up`'s, calls this and `release_signals` itself)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Outside the main thread signals cannot be caught: the caller's own cleanup applies.
            with contextlib.suppress(ValueError):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        if self._old_handlers:
            self._old_unraisable = sys.unraisablehook
            sys.unraisablehook = self._on_unraisable

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first SIGINT/SIGTERM unwinds the run; any later one waits for the cleanup."""
        self._hold()
        raise LabInterrupted(f"signal {signum}", signum=signum)

    def _on_unraisable(self, info: sys.UnraisableHookArgs) -> None:
        """The signal came while Python ran a finalizer (a `__del__`, e.g. `Popen.__del__` during garbage
        collection), where an exception is printed and dropped: the run would go on as if nothing
        came. Deliver the signal again, to be raised in the code the finalizer interrupted."""
        exc = info.exc_value
        if isinstance(exc, LabInterrupted) and exc.signum is not None:
            for sig in self._old_handlers:
                signal.signal(sig, self._on_signal)
            # Sent from another thread a moment later: the handler then runs once this hook and the
            # collection that called the finalizer have returned (raising it here would be dropped too).
            self._resend = threading.Timer(_RESEND_S, os.kill, (os.getpid(), exc.signum))
            self._resend.daemon = True
            self._resend.start()
        elif self._old_unraisable is not None:
            self._old_unraisable(info)

    def _hold(self) -> None:
        for sig in self._old_handlers:
            signal.signal(sig, lambda signum, frame: self._held.append(signum))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.hold_signals()
        try:
            left = self.close()
        finally:
            self.release_signals()
        if isinstance(exc, LabInterrupted):
            exc.left += left
        elif self._held and exc is None:
            raise LabInterrupted(f"signal {self._held[0]}", left)

    def hold_signals(self) -> None:
        """Cleaning up: a signal from now on waits (`_held`) rather than interrupt the cleanup."""
        self._hold()
        if self._resend is not None:
            self._resend.cancel()  # not sent after the lab's handlers are gone (held if already sent)

    def release_signals(self) -> None:
        """The handlers (and unraisable hook) from before `catch_signals` again."""
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if self._old_unraisable is not None:
            sys.unraisablehook = self._old_unraisable

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

    def close(self) -> list[str]:
        """Remove every namespace under this lab's prefix (as `ip netns list` shows them: one
        being created when a signal came is removed too); returns those still there after."""
        order = {ns.name: i for i, ns in enumerate(self.namespaces)}
        for _ in range(3):
            names = owned_by(self.prefix)
            if not names:
                break
            for name in sorted(names, key=lambda n: -order.get(n, len(order))):
                delete_namespace(name)
        self.namespaces.clear()
        return owned_by(self.prefix)


class LabInterrupted(BaseException):
    """SIGTERM/SIGINT during a lab run: unwinds through cleanup, then the caller exits.
    `left`: the namespaces still there after the cleanup (checked; normally none)."""

    def __init__(self, message: str, left: list[str] | None = None, signum: int | None = None) -> None:
        super().__init__(message)
        self.left: list[str] = list(left or [])
        self.signum = signum  # the signal that raised it (None: raised after the cleanup)
