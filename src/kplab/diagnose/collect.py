"""`kplab doctor collect`: the read-only commands that gather the doctor's inputs on a node."""

from __future__ import annotations

NODE_COMMANDS = (
    ("iptables-save > iptables-save.txt", "--iptables-save iptables-save.txt"),
    ("nft -j list ruleset > nft.json", "--nft nft.json"),
    ("sysctl -a 2>/dev/null | grep -E 'nf_conntrack|netfilter' > sysctl.txt", "--sysctl sysctl.txt"),
    (
        "cat /proc/net/stat/nf_conntrack > ct-stats-1.txt; sleep 60; cat /proc/net/stat/nf_conntrack > "
        "ct-stats-2.txt",
        "--conntrack-stats ct-stats-1.txt --conntrack-stats ct-stats-2.txt --stats-interval 60",
    ),
    ("uname -r", "--uname $(uname -r)"),
    (
        "ip -j addr > ip-addr.json; ip -j route > ip-route.json; ipset save > ipset.txt",
        "trace ... --ip-addr ip-addr.json --ip-route ip-route.json --ipset-save ipset.txt",
    ),
    (
        "kubectl -n kube-system get configmap kube-proxy -o yaml > kube-proxy.yaml",
        "--kube-proxy-config kube-proxy.yaml",
    ),
    (
        "tcpdump -i any -w reset.pcap 'tcp[tcpflags] & tcp-rst != 0 or net POD_CIDR' (while a reset happens)",
        "--pcap reset.pcap --service-cidr SERVICE_CIDR --pod-cidr POD_CIDR",
    ),
)


def collect_text(node: str) -> str:
    """The commands, first on the node itself, then through `kubectl debug node/NAME`."""
    lines = ["# On the node (as root). Every command only reads; nothing is changed.", ""]
    lines += [f"{cmd}\n    # then: kplab doctor {flag}" for cmd, flag in NODE_COMMANDS]
    debug = f"kubectl debug node/{node} -it --profile=sysadmin --image=nicolaka/netshoot --"
    lines += [
        "",
        f"# Without a shell on the node: a debug pod in the node's network namespace ({node}).",
        "# The node's files are under /host; the network commands see the node's netns.",
        "",
        f"{debug} iptables-save > iptables-save.txt",
        f"{debug} nft -j list ruleset > nft.json",
        f"{debug} sh -c 'sysctl -a 2>/dev/null | grep -E \"nf_conntrack|netfilter\"' > sysctl.txt",
        f"{debug} cat /proc/net/stat/nf_conntrack > ct-stats-1.txt",
        "sleep 60",
        f"{debug} cat /proc/net/stat/nf_conntrack > ct-stats-2.txt",
        f"{debug} uname -r",
        f"{debug} ip -j addr > ip-addr.json",
        f"{debug} ip -j route > ip-route.json",
        f"{debug} ipset save > ipset.txt",
        "",
        "# Then, on your machine:",
        "kplab doctor --iptables-save iptables-save.txt --nft nft.json --sysctl sysctl.txt \\",
        "    --conntrack-stats ct-stats-1.txt --conntrack-stats ct-stats-2.txt --stats-interval 60 \\",
        "    --uname RELEASE --kube-proxy-config kube-proxy.yaml",
        "kplab trace --rules iptables-save.txt \\",
        "    --ip-addr ip-addr.json --ip-route ip-route.json --ipset-save ipset.txt \\",
        "    -p tcp --src POD_IP --dst SERVICE_IP:PORT --in-iface IFACE",
        "",
        "# iptables-save must be the one kube-proxy uses (iptables-legacy-save on legacy nodes).",
    ]
    return "\n".join(lines) + "\n"
