"""The `--full-node` rules work on a real kernel: from a lab "node" namespace, a connection to a
Service's cluster IP reaches the pod behind it (DNAT by the generated KUBE-SERVICES/SVC/SEP
chains), and a Service without endpoints is refused (REJECT), for every kube-proxy version."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kplab.kubeproxy import KubeProxyConfig, Version, generate, load_manifest_text
from kplab.lab.kprules import load
from kplab.lab.netns import Lab

MANIFESTS = """\
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80}]}
---
kind: Service
metadata: {name: empty, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}
---
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
endpoints: [{addresses: [10.244.1.2], nodeName: node-a}]
ports: [{name: http, port: 8080}]
---
kind: Endpoints
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 10.244.1.2, nodeName: node-a}], ports: [{name: http, port: 8080}]}]
---
kind: Node
metadata: {name: node-a}
status: {addresses: [{type: InternalIP, address: 10.244.1.1}]}
"""
SERVER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 8080)); s.listen(); print('ready', flush=True)\n"
    "c, peer = s.accept(); c.sendall(b'hello from pod ' + peer[0].encode()); c.close()\n"
)
CLIENT = (
    "import socket,sys\n"
    "try:\n"
    "    c=socket.create_connection((sys.argv[1], 80), timeout=5); print(c.recv(100).decode())\n"
    "except OSError as e:\n"
    "    print(type(e).__name__)\n"
)


@pytest.mark.kernel
@pytest.mark.parametrize("version", list(Version), ids=lambda v: v.value)
def test_cluster_ip_reaches_the_pod_and_no_endpoints_is_refused(lab: Lab, version: Version) -> None:
    node, pod = lab.netns("node"), lab.netns("pod")
    lab.veth(node, "vpod", pod, "eth0")
    node.run(["ip", "addr", "add", "10.244.1.1/24", "dev", "vpod"])
    node.run(["ip", "route", "add", "default", "dev", "vpod"])
    pod.run(["ip", "addr", "add", "10.244.1.2/24", "dev", "eth0"])
    pod.run(["ip", "route", "add", "default", "via", "10.244.1.1"])
    cluster = load_manifest_text(MANIFESTS, "m.yaml")
    rules = generate(
        cluster, config=KubeProxyConfig(cluster_cidr="10.244.0.0/16"), version=version, full_node=True
    )
    load(node, rules)
    server = pod.popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        reply = node.run([sys.executable, "-c", CLIENT, "10.96.0.10"]).stdout.strip()
        assert reply == "hello from pod 10.244.1.1"
        refused = node.run([sys.executable, "-c", CLIENT, "10.96.0.20"]).stdout.strip()
        assert refused == "ConnectionRefusedError"
    finally:
        server.kill()
        server.wait()
