"""Shared test fixtures.

Tests marked `kernel` need root and the real kernel. They are never skipped as root: if a tool is
missing they fail with the reason (LabUnavailable). Without root they are skipped with a reason
(a developer's laptop); CI runs as root.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest

from kplab.lab.netns import PREFIX, Lab, list_namespaces, require


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root for network namespaces (CI runs as root)")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _sigint_handler_kept() -> Iterator[None]:
    """`kplab.cli.main()` ignores SIGINT on its way out; tests that call it in-process get theirs back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A Lab whose namespaces are gone when the test ends (checked)."""
    require()
    with Lab("t") as the_lab:
        prefix = the_lab.prefix
        yield the_lab
    left = [n for n in list_namespaces() if n.startswith(prefix)]
    assert not left, f"lab namespaces left behind: {left}"


@pytest.fixture
def namespaces_made() -> Callable[[], list[str]]:
    """Lists the namespaces this test made that are still there: this process's namespaces that did
    not exist when the test started.

    A leftover check must look at the test's own labs only: a session-scoped lab (tests/conntrack's
    kernel node, `kplab-<pid>-ct0-*`) lives on the same xdist worker across tests, in any order."""
    mine = f"{PREFIX}{os.getpid()}-"
    before = {n for n in list_namespaces() if n.startswith(mine)}
    return lambda: sorted(n for n in list_namespaces() if n.startswith(mine) and n not in before)
