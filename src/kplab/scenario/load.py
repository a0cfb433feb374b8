"""Read a scenario from YAML, strictly: unknown keys, wrong types and dangling references are
errors that name the file and line (`seed.yaml:14: workload.parallel: expected an integer`)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kplab.errors import InputError
from kplab.kubeproxy import k8snames
from kplab.netfilter.conntrack import KERNEL_PROFILES, Sysctls
from kplab.packet.addr import ip, parse_cidr
from kplab.scenario.limits import Limits, problems
from kplab.scenario.schema import Faults, LinkSpec, NodeSpec, PodSpec, Scenario, ServiceSpec, Workload
from kplab.scenario.units import duration_ns, rate_bps, size_bytes
from kplab.scenario.yamlines import LineDict
from kplab.scenario.yamlines import load as load_yaml
from kplab.untrusted import read_text, shown

SECOND = 1_000_000_000
MAX_QUEUE_PACKETS = 1_000_000
MAX_RCVBUF = 2**31 - 1  # the kernel's int (net.core.rmem_max)
KUBE_PROXY_VERSIONS = ("1.14", "1.15", "current")
KUBE_PROXY_MODES = ("iptables", "nftables")
NFT_KUBE_PROXY_VERSIONS = ("1.33", "current")
_LINK = LinkSpec()
_BUILTIN = "<builtin:"  # a built-in scenario's source: <builtin:NAME>


class _Reader:
    """Reads one mapping, remembering which keys were used, and reports errors with lines."""

    def __init__(self, data: object, file: str, path: str, line: int) -> None:
        if not isinstance(data, LineDict):
            raise InputError(f"{file}:{line}: {path or 'scenario'}: expected a mapping")
        self.data, self.file, self.path, self.used = data, file, path, set[str]()

    def error(self, key: str, message: str) -> InputError:
        name = f"{self.path}.{key}" if self.path else key
        return InputError(f"{self.file}:{self.data.line_of(key)}: {name}: {message}")

    def get(self, key: str, convert: Callable[[Any], Any], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise InputError(f"{self.file}:{self.data.line}: {self.path or 'scenario'}: missing '{key}'")
            return default
        try:
            return convert(self.data[key])
        except InputError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise self.error(key, str(exc.args[0]) if exc.args else type(exc).__name__) from None

    def sub(self, key: str) -> _Reader | None:
        self.used.add(key)
        if key not in self.data:
            return None
        name = f"{self.path}.{key}" if self.path else key
        return _Reader(self.data[key], self.file, name, self.data.line_of(key))

    def items(self, key: str) -> list[_Reader]:
        self.used.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, "expected a list")
        name = f"{self.path}.{key}" if self.path else key
        return [_Reader(v, self.file, f"{name}[{i}]", self.data.line_of(key)) for i, v in enumerate(value)]

    def done(self) -> None:
        for key in self.data:
            if key not in self.used:
                raise self.error(key, "unknown key")


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, got {shown(v)}")
    return v


def _int_in(low: int, high: int) -> Callable[[Any], int]:
    def convert(v: Any) -> int:
        number = _int(v)
        if not low <= number <= high:
            raise ValueError(f"expected an integer in {low}..{high}, got {shown(number)}")
        return number

    return convert


def _at_least(low: int, convert: Callable[[Any], int], what: str) -> Callable[[Any], int]:
    def checked(v: Any) -> int:
        number = convert(v)
        if number < low:
            raise ValueError(f"{what}, got {shown(v)}")
        return number

    return checked


_port = _int_in(1, 65535)  # a Service's port and targetPort (0 is "unset" in Kubernetes)
_seed = _int_in(0, 2**64 - 1)


def _share(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:  # (refuses NaN)
        raise ValueError(f"expected a probability between 0 and 1, got {shown(v)}")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a string, got {shown(v)}")
    return v


def _name(check: Callable[[str], str | None]) -> Callable[[Any], str]:
    """A Kubernetes name, checked as the API server checks that kind's names."""

    def convert(v: Any) -> str:
        problem = check(_str(v))
        if problem is not None:
            raise ValueError(problem)
        return str(v)

    return convert


_subdomain = _name(k8snames.dns1123_subdomain)  # pods, nodes (also file names: DIR/<node>.pcapng)


def _ipv4(v: Any) -> str:
    ip(_str(v))
    return str(v)


def _cidr(v: Any) -> str:
    parse_cidr(_str(v))
    return str(v)


def _labels(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v):
        raise ValueError("expected a mapping of labels")
    for key, value in v.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError(f"label {shown(key)}: expected a string, got {shown(value)}")
        problem = k8snames.label_key(key) or k8snames.label_value(str(value))
        if problem is not None:
            raise ValueError(problem)
    return {k: str(x) for k, x in v.items()}


def _sysctls(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        raise ValueError("expected a mapping of sysctl: integer")
    result = {str(k)[:100]: _int(x) for k, x in v.items()}
    for key, value in result.items():
        try:  # the node's conntrack must know it (net.netfilter.nf_conntrack_*)
            Sysctls().set(key, str(value))
        except InputError as exc:
            raise ValueError(str(exc)) from None
    return result


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        text = str(v) if isinstance(v, str | int | float) else ""
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {shown(v)}")
        return text

    return convert


def _faults(r: _Reader | None) -> Faults:
    if r is None:
        return Faults()
    f = Faults(
        loss=r.get("loss", _share, 0.0),
        duplicate=r.get("duplicate", _share, 0.0),
        slow_share=r.get("slow_share", _share, 0.0),
        slow_delay_ns=r.get("slow_delay", duration_ns, 0),
        jitter_ns=r.get("jitter", duration_ns, 0),
    )
    r.done()
    return f


def _link(r: _Reader | None) -> LinkSpec:
    if r is None:
        return LinkSpec()
    spec = LinkSpec(
        rate_bps=r.get("rate", _at_least(1, rate_bps, "a link needs a rate above 0"), _LINK.rate_bps),
        delay_ns=r.get("delay", duration_ns, _LINK.delay_ns),
        queue_packets=r.get("queue", _int_in(1, MAX_QUEUE_PACKETS), _LINK.queue_packets),
        faults=_faults(r.sub("faults")),
    )
    r.done()
    return spec


def _node(r: _Reader) -> NodeSpec:
    node = NodeSpec(
        name=r.get("name", _subdomain),
        ip=r.get("ip", _ipv4),
        pod_cidr=r.get("pod_cidr", _cidr),
        kernel=r.get("kernel", _choice(KERNEL_PROFILES), None),
        sysctls=r.get("sysctls", _sysctls, {}),
    )
    r.done()
    return node


def _pod(r: _Reader) -> PodSpec:
    pod = PodSpec(
        name=r.get("name", _subdomain),
        node=r.get("node", _subdomain),
        ip=r.get("ip", _ipv4),
        labels=r.get("labels", _labels, {}),
    )
    r.done()
    return pod


def _external(r: _Reader) -> PodSpec:
    name, addr = r.get("name", _subdomain), r.get("ip", _ipv4)
    host = PodSpec(name=name, node="", ip=addr, labels=r.get("labels", _labels, {}))
    r.done()
    return host


def _service(r: _Reader) -> ServiceSpec:
    port = r.get("port", _port)
    svc = ServiceSpec(
        namespace=r.get("namespace", _name(k8snames.dns1123_label), "default"),
        name=r.get("name", _name(k8snames.dns1035_label)),
        cluster_ip=r.get("cluster_ip", _ipv4),
        port=port,
        target_port=r.get("target_port", _port, port),
        selector=r.get("selector", _labels),
        port_name=r.get("port_name", _name(k8snames.dns1123_label), "http"),
        protocol=r.get("protocol", _choice(("TCP", "UDP", "SCTP")), "TCP"),
    )
    r.done()
    return svc


def _workload(r: _Reader) -> Workload:
    w = Workload(
        server_selector=r.get("server_selector", _labels),
        client_selector=r.get("client_selector", _labels),
        service=r.get("service", _str),
        target=r.get("target", _choice(("service", "pod")), "service"),
        file_bytes=r.get("file_size", _at_least(1, size_bytes, "a file needs at least 1 byte"), 10_000_000),
        request_bytes=r.get("request_size", _at_least(1, size_bytes, "a request needs at least 1 byte"), 100),
        parallel=r.get("parallel", _int_in(1, 10**9), 1),
        downloads=r.get("downloads", _int_in(1, 10**9), 1),
        read_rate_bps=r.get("read_rate", rate_bps, 0),
        start_spread_ns=r.get("start_spread", duration_ns, 1_000_000_000),
    )
    r.done()
    return w


def parse(text: str, file: str) -> Scenario:
    data = load_yaml(text, file)
    r = _Reader(data, file, "", 1)
    workload_reader = r.sub("workload")
    if workload_reader is None:
        raise InputError(f"{file}:1: scenario: missing 'workload'")
    links = r.sub("links")
    tcp = r.sub("tcp")
    mode = r.get("kube_proxy_mode", _choice(KUBE_PROXY_MODES), "iptables")
    scenario = Scenario(
        name=r.get("name", _str),
        seed=r.get("seed", _seed, 1),
        duration_ns=r.get(
            "duration", _at_least(1, duration_ns, "a scenario needs a duration above 0"), 60 * SECOND
        ),
        kernel=r.get("kernel", _choice(KERNEL_PROFILES), "5.4"),
        kube_proxy_mode=mode,
        kube_proxy_version=r.get(
            "kube_proxy_version",
            _choice(NFT_KUBE_PROXY_VERSIONS if mode == "nftables" else KUBE_PROXY_VERSIONS),
            "current" if mode == "nftables" else "1.14",
        ),
        operator_drop_invalid=r.get("operator_drop_invalid", _bool, False),
        cluster_cidr=r.get("cluster_cidr", _cidr, "10.0.0.0/16"),
        sysctls=r.get("sysctls", _sysctls, {}),
        nodes=tuple(_node(n) for n in r.items("nodes")),
        pods=tuple(_pod(p) for p in r.items("pods")),
        externals=tuple(_external(h) for h in r.items("externals")),
        tcp_rcvbuf_bytes=tcp.get("rcvbuf", _at_most(MAX_RCVBUF, size_bytes), 0) if tcp else 0,
        services=tuple(_service(s) for s in r.items("services")),
        pod_link=_link(links.sub("pod") if links else None),
        fabric_link=_link(links.sub("fabric") if links else None),
        workload=_workload(workload_reader),
        source=file,
    )
    limits = _limits(r.sub("limits"))
    if links:
        links.done()
    if tcp:
        tcp.done()
    r.done()
    _check_unique(scenario, data, file)
    _check_references(scenario, data, file)
    _check_limits(scenario, limits, data, file)
    return scenario


def _at_most(high: int, convert: Callable[[Any], int]) -> Callable[[Any], int]:
    def checked(v: Any) -> int:
        number = convert(v)
        if number > high:
            raise ValueError(f"{shown(v)} is more than {high}")
        return number

    return checked


def _limits(r: _Reader | None) -> Limits:
    if r is None:
        return Limits()
    d = Limits()
    positive = _at_least(1, _int, "expected a positive integer")
    limits = Limits(
        hosts=r.get("hosts", positive, d.hosts),
        connections=r.get("connections", positive, d.connections),
        transfer_bytes=r.get("transfer", _at_least(1, size_bytes, "expected a size"), d.transfer_bytes),
        duration_ns=r.get("duration", _at_least(1, duration_ns, "expected a duration"), d.duration_ns),
    )
    r.done()
    return limits


def _check_unique(s: Scenario, data: LineDict, file: str) -> None:
    """Names and addresses are keys: a second pod of the same name would silently replace the first."""
    for key, what, values in (
        ("nodes", "node name", [n.name for n in s.nodes]),
        ("pods", "pod or external host name", [p.name for p in (*s.pods, *s.externals)]),
        ("pods", "address", [*(n.ip for n in s.nodes), *(p.ip for p in (*s.pods, *s.externals))]),
        ("services", "service", [f"{v.namespace}/{v.name}" for v in s.services]),
    ):
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise InputError(f"{file}:{data.line_of(key)}: {key}: {what} {value} appears twice")
            seen.add(value)


def _check_limits(s: Scenario, limits: Limits, data: LineDict, file: str) -> None:
    for key, problem in problems(s, limits):
        raise InputError(f"{file}:{data.line_of(key)}: {key}: {problem}")


def _check_references(s: Scenario, data: LineDict, file: str) -> None:
    names = {n.name for n in s.nodes}
    if not names:
        raise InputError(f"{file}:{data.line}: nodes: a scenario needs at least one node")
    for pod in s.pods:
        if pod.node not in names:
            raise InputError(
                f"{file}:{data.line_of('pods')}: pods: pod {pod.name} is on unknown node {pod.node}"
            )
    try:
        s.service(s.workload.service)
    except KeyError:
        raise InputError(
            f"{file}:{data.line_of('workload')}: workload.service: no service {s.workload.service}"
        ) from None
    for what, sel in (
        ("server_selector", s.workload.server_selector),
        ("client_selector", s.workload.client_selector),
    ):
        if not s.hosts_matching(sel):
            raise InputError(f"{file}:{data.line_of('workload')}: workload.{what}: no pod matches {sel}")


def load_file(path: str | Path) -> Scenario:
    return parse(read_text(path), str(path))


def builtin_text(name: str = "seed") -> str:
    return (resources.files("kplab") / "data" / "scenarios" / f"{name}.yaml").read_text()


def builtin(name: str = "seed") -> Scenario:
    return parse(builtin_text(name), f"{_BUILTIN}{name}>")


def source_text(scenario: Scenario) -> str:
    """The YAML `scenario` was read from: its file, or the embedded text of a built-in one."""
    if scenario.source.startswith(_BUILTIN):
        return builtin_text(scenario.source[len(_BUILTIN) : -1])
    return read_text(scenario.source)


def dump_check(text: str) -> None:
    """Raise if `text` is not YAML at all (used by tests of --show-scenario)."""
    yaml.safe_load(text)
