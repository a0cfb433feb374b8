"""One real-kernel node (three lab namespaces) per test session, shared by the kernel tests here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kplab.lab.netns import Lab, list_namespaces, require

from .kernlab import KernelNode


@pytest.fixture(scope="session")
def kernel_node() -> Iterator[KernelNode]:
    require()
    with Lab("ct") as lab:
        prefix = lab.prefix
        node = KernelNode(lab)
        try:
            yield node
        finally:
            node.close()
    assert not [n for n in list_namespaces() if n.startswith(prefix)]
