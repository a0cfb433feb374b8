"""What the lab measures from the kernel, read inside lab namespaces.

- `/proc/net/stat/nf_conntrack` of a node: per-CPU rows in hex, summed (per netns counters:
  `invalid`, `drop`, `early_drop`, `insert_failed` ...);
- the TCP MIB of a pod (`/proc/net/snmp` and `/proc/net/netstat`, what `nstat` reads);
- rule counters of the lab's own accounting chains: packets per ctstate at a node's mangle
  PREROUTING (`KPLAB-CTSTATE`), and replies reaching a client pod with a backend's own address,
  i.e. that escaped the Service's reverse NAT (`KPLAB-ESCAPE`, raw PREROUTING of the client pod).
  The chains only count (no target), so they change no verdict.
"""

from __future__ import annotations

import shlex

from kplab.lab.netns import Netns

CTSTATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")
CTSTATE_CHAIN = "KPLAB-CTSTATE"
ESCAPE_CHAIN = "KPLAB-ESCAPE"


def conntrack_stats(node: Netns) -> dict[str, int]:
    lines = node.read("/proc/net/stat/nf_conntrack").splitlines()
    names = lines[0].split()
    totals = dict.fromkeys(names, 0)
    for line in lines[1:]:
        for name, value in zip(names, line.split(), strict=False):
            totals[name] += int(value, 16)
    totals.pop("entries", None)  # a gauge, not a counter
    return totals


def tcp_mib(pod: Netns) -> dict[str, int]:
    """`Tcp*` and `TcpExt*` counters, spelled as nstat spells them (TcpOutRsts, TcpExtTCPChallengeACK)."""
    text = pod.run(["cat", "/proc/net/snmp", "/proc/net/netstat"]).stdout
    out: dict[str, int] = {}
    lines = text.splitlines()
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        prefix, names = head.split(":", 1)
        if prefix not in ("Tcp", "TcpExt"):
            continue
        for name, value in zip(names.split(), values.split(":", 1)[1].split(), strict=False):
            out[f"{prefix}{name}"] = int(value)
    return out


def install_accounting(node: Netns) -> None:
    """A counting chain in the node's mangle PREROUTING: packets per ctstate."""
    lines = ["*mangle", f":{CTSTATE_CHAIN} - [0:0]", f"-A PREROUTING -j {CTSTATE_CHAIN}"]
    lines += [f'-A {CTSTATE_CHAIN} -m conntrack --ctstate {s} -m comment --comment "{s}"' for s in CTSTATES]
    node.run(["iptables-restore", "--noflush"], input="\n".join([*lines, "COMMIT"]) + "\n")


def install_escape_counter(pod: Netns, backends: list[tuple[str, int]]) -> None:
    """In a client pod (raw PREROUTING, no conntrack needed): packets arriving from a backend's own
    address and port while the client talks to the Service VIP, i.e. replies that escaped the
    reverse NAT. (The node's mangle POSTROUTING would be too early: reverse DNAT of a reply is a
    source rewrite done later, at nat POSTROUTING.)"""
    lines = ["*raw", f":{ESCAPE_CHAIN} - [0:0]", f"-A PREROUTING -j {ESCAPE_CHAIN}"]
    for backend, port in backends:
        lines.append(
            f'-A {ESCAPE_CHAIN} -s {backend}/32 -p tcp -m tcp --sport {port} -m comment --comment "escape"'
        )
    pod.run(["iptables-restore", "--noflush"], input="\n".join([*lines, "COMMIT"]) + "\n")


def accounting(node: Netns) -> dict[str, int]:
    """Packets counted per comment of the lab's chains: each ctstate, and `escape`."""
    text = node.run(["iptables-save", "-c"]).stdout
    out: dict[str, int] = dict.fromkeys((*CTSTATES, "escape"), 0)
    for line in text.splitlines():
        if not line.startswith("[") or not (f"-A {CTSTATE_CHAIN} " in line or f"-A {ESCAPE_CHAIN} " in line):
            continue
        packets = int(line[1:].split(":", 1)[0])
        words = shlex.split(line)
        comment = words[words.index("--comment") + 1] if "--comment" in words else ""
        if comment in out:
            out[comment] += packets
    return out


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items()}
