"""The copied upstream fixtures (tests/data/kube-proxy, and tests/data/kube-proxy-nftables for
nftables mode): folders, cases, and loading one case."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kplab.kubeproxy import Cluster, KubeProxyConfig, NodeEnv, load_config, load_env, load_manifests

DATA = Path(__file__).resolve().parent.parent / "data" / "kube-proxy"
NFT_DATA = DATA.parent / "kube-proxy-nftables"
KINDS = ("services", "kube-proxy", "env", "expected", "traces")


@dataclass(frozen=True)
class Case:
    folder: str
    name: str  # "" = the default case
    root: Path = DATA

    @property
    def id(self) -> str:
        return f"{self.folder}/{self.name or 'default'}"

    def file(self, kind: str, ext: str) -> Path | None:
        """The case's own `<kind>.<case>.<ext>`, else the plain `<kind>.<ext>` (None if neither)."""
        own = self.root / self.folder / f"{kind}.{self.name}.{ext}"
        plain = self.root / self.folder / f"{kind}.{ext}"
        if self.name and own.exists():
            return own
        return plain if plain.exists() else None

    def load(self) -> tuple[Cluster, KubeProxyConfig, NodeEnv]:
        services = self.file("services", "yaml")
        assert services is not None
        cluster = load_manifests([str(services), str(self.root / self.folder / "node.yaml")])
        config_path = self.file("kube-proxy", "yaml")
        env_path = self.file("env", "yaml")
        assert config_path is not None and env_path is not None
        config, _ = load_config(str(config_path))
        return cluster, config, load_env(str(env_path))


def cases(root: Path = DATA) -> list[Case]:
    """Every case of every folder that has Services (trace_static has none; sync_repeated's later
    steps are partial syncs, covered by their own test)."""
    out = []
    for folder in sorted(p.name for p in root.iterdir() if p.is_dir()):
        if not (root / folder / "services.yaml").exists():
            continue
        names = {""}
        for path in (root / folder).iterdir():
            parts = path.name.split(".")
            if len(parts) == 3 and parts[0] in KINDS and not parts[1].startswith("step"):
                names.add(parts[1])
        out += [Case(folder, name, root) for name in sorted(names)]
    return out
