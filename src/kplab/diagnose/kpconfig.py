"""The KubeProxyConfiguration fields the doctor needs: the proxy mode and the conntrack settings.

Accepts the configuration itself or the kube-proxy ConfigMap that carries it (`data: config.conf`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from kplab.errors import InputError
from kplab.untrusted import YAML_ERRORS, LimitedLoader, shown, yaml_problem


@dataclass(frozen=True, slots=True)
class KubeProxySettings:
    file: str
    doc: int
    mode: str  # iptables, ipvs, nftables ("" means the default, iptables on Linux)
    tcp_be_liberal: bool | None
    cluster_cidr: str

    @property
    def effective_mode(self) -> str:
        return self.mode or "iptables"

    def where(self, field_name: str) -> str:
        return f"{self.file}:doc {self.doc}: {field_name}"


def parse(text: str, file: str) -> KubeProxySettings:
    try:
        docs = list(yaml.load_all(text, Loader=LimitedLoader))
    except YAML_ERRORS as exc:
        line, problem = yaml_problem(exc)
        raise InputError(f"{file}:{line}: not YAML: {problem}") from None
    for number, doc in enumerate(docs, start=1):
        config = _config_of(doc, file, number)
        if config is not None:
            return _settings(config, file, number)
    raise InputError(f"{file}:doc 1: no KubeProxyConfiguration (nor a ConfigMap with config.conf)")


def _config_of(doc: Any, file: str, number: int) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "KubeProxyConfiguration":
        return doc
    data = doc.get("data")
    if doc.get("kind") == "ConfigMap" and isinstance(data, dict) and isinstance(data.get("config.conf"), str):
        try:
            inner = yaml.load(data["config.conf"], Loader=LimitedLoader)
        except YAML_ERRORS:
            raise InputError(f"{file}:doc {number}: data.config.conf is not YAML") from None
        if isinstance(inner, dict) and inner.get("kind") == "KubeProxyConfiguration":
            return inner
    return None


def _settings(config: dict[str, Any], file: str, number: int) -> KubeProxySettings:
    mode = config.get("mode") or ""
    if not isinstance(mode, str) or mode not in ("", "iptables", "ipvs", "nftables", "kernelspace"):
        raise InputError(f"{file}:doc {number}: mode: expected iptables, ipvs or nftables, got {shown(mode)}")
    conntrack = config.get("conntrack") or {}
    if not isinstance(conntrack, dict):
        raise InputError(f"{file}:doc {number}: conntrack: expected a mapping")
    liberal = conntrack.get("tcpBeLiberal")
    if liberal is not None and not isinstance(liberal, bool):
        raise InputError(f"{file}:doc {number}: conntrack.tcpBeLiberal: expected true or false")
    cidr = config.get("clusterCIDR") or ""
    if not isinstance(cidr, str):
        raise InputError(f"{file}:doc {number}: clusterCIDR: expected a string")
    return KubeProxySettings(file, number, mode, liberal, cidr)
