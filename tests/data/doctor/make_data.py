"""Regenerate the real-kernel test data of the doctor tests (run as root from the repo root):

    .venv/bin/python tests/data/doctor/make_data.py

Each `kp-*.save` is what the real `iptables-save` (iptables 1.8.9 nf_tables, Linux 6.18) printed
after `iptables-restore` loaded `kplab rules --full-node` output for cluster.yaml and
kube-proxy.yaml (written for kplab) into a fresh lab namespace. `mixed-1.15.save` adds the
kubelet and Docker inputs of tests/data/dumps/inputs. `sysctl-*.txt`, `proc-stat-*.txt` and
`conntrack-S-*.txt` are `sysctl -a`, `/proc/net/stat/nf_conntrack` and `conntrack -S` read in
lab namespaces (before and after traffic that conntrack calls INVALID).
"""

from __future__ import annotations

import sys
from pathlib import Path

from kplab.kubeproxy import NodeEnv, Version, generate, load_config, load_manifests
from kplab.lab.kprules import load
from kplab.lab.netns import Lab, Netns

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
INPUTS = ROOT / "tests" / "data" / "dumps" / "inputs"
BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
NFACCT = "ct_state_invalid_dropped_pkts"


def save_dump(
    lab: Lab,
    name: str,
    version: Version,
    *,
    liberal: int = 0,
    nfacct: bool = False,
    extra: tuple[str, ...] = (),
) -> None:
    config, _ = load_config(str(HERE / "kube-proxy.yaml"))
    cluster = load_manifests([str(HERE / "cluster.yaml")])
    env = NodeEnv(nfacct=frozenset({NFACCT}) if nfacct else frozenset())
    rules = generate(
        cluster, config=config, env=env, version=version, sysctls={BE_LIBERAL: liberal}, full_node=True
    )
    ns = lab.netns(name.replace(".", ""))
    load(ns, rules, env.nfacct)
    for file in extra:  # appended after kube-proxy's rules, as when kubelet and Docker start later
        ns.run(["iptables-restore", "--noflush"], input=(INPUTS / file).read_text())
    (HERE / f"{name}.save").write_text(ns.run(["iptables-save"]).stdout)


def counters(ns: Netns, tag: str) -> None:
    (HERE / f"proc-stat-{tag}.txt").write_text(ns.read("/proc/net/stat/nf_conntrack"))
    (HERE / f"conntrack-S-{tag}.txt").write_text(ns.run(["conntrack", "-S"]).stdout)


def invalid_traffic(lab: Lab) -> None:
    """Counter samples before and after 50 packets conntrack calls INVALID (FIN without ACK)."""
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, "eth0", b, "eth0")
    a.run(["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"])
    b.run(["ip", "addr", "add", "10.9.0.2/24", "dev", "eth0"])
    a.run(["iptables", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "ACCEPT"])
    (HERE / "sysctl-default.txt").write_text(a.run(["sysctl", "-a"], check=False).stdout)
    counters(a, "before")
    send = "\n".join(
        f"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)\n"
        f"hdr=bytes.fromhex('30390050000000010000000050010200') + bytes(4)\n"
        f"[s.sendto(hdr, ('10.9.0.2', 0)) for _ in range({n})]"
        for n in (50,)
    )
    a.run([sys.executable, "-c", send])
    counters(a, "after")


def nft_dumps(lab: Lab) -> None:
    """`nft -j list ruleset` of the kube-proxy-like nftables layout, without and with a drop."""
    ns = lab.netns("nft")
    ns.run(["nft", "-f", str(HERE / "nft-kube-proxy.nft")])
    (HERE / "nft-kube-proxy.json").write_text(ns.run(["nft", "-j", "list", "ruleset"]).stdout)
    ns.run(["nft", "-f", str(HERE / "nft-drop-invalid.nft")])
    (HERE / "nft-kube-proxy-drop.json").write_text(ns.run(["nft", "-j", "list", "ruleset"]).stdout)


def main() -> None:
    with Lab("data") as lab:
        save_dump(lab, "kp-1.14", Version.V1_14)
        save_dump(lab, "kp-1.15", Version.V1_15)
        save_dump(lab, "kp-current", Version.CURRENT)
        save_dump(lab, "kp-current-nfacct", Version.CURRENT, nfacct=True)
        save_dump(lab, "kp-current-liberal", Version.CURRENT, liberal=1)
        save_dump(lab, "mixed-1.15", Version.V1_15, extra=("kubelet.rules", "docker.rules"))
        invalid_traffic(lab)
        nft_dumps(lab)


if __name__ == "__main__":
    main()
