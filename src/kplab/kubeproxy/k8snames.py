"""Kubernetes' rules for names, as its API server validates them (apimachinery validation).

Each check returns what is wrong (`None` when the name is valid), worded like the API server:
- DNS-1123 label (namespaces, Service port names): at most 63 characters, lowercase letters, digits
  and '-', starting and ending with a letter or digit;
- DNS-1123 subdomain (pods, nodes, EndpointSlices, Endpoints): at most 253 characters, DNS-1123
  labels joined by '.';
- DNS-1035 label (Services): a DNS-1123 label that starts with a letter;
- label keys (an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters
  of letters, digits, '-', '_', '.', starting and ending with a letter or digit) and label values
  (the same name rule, or empty).
A name that passes any of these is also a safe file name: no '/', no '..' component, no NUL.
"""

from __future__ import annotations

import re
from typing import Final

_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def _quote(value: str) -> str:
    return repr(value if len(value) <= 70 else value[:67] + "...")


def dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return f"{_quote(value)} is longer than 63 characters (a DNS-1123 label)"
    if not _LABEL.fullmatch(value):
        return (
            f"{_quote(value)} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return f"{_quote(value)} is longer than 253 characters (a DNS-1123 subdomain)"
    if not _SUBDOMAIN.fullmatch(value):
        return (
            f"{_quote(value)} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit)"
        )
    return None


def dns1035_label(value: str) -> str | None:
    if len(value) > 63:
        return f"{_quote(value)} is longer than 63 characters (a DNS-1035 label)"
    if not _DNS1035.fullmatch(value):
        return (
            f"{_quote(value)} is not a DNS-1035 label (lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit)"
        )
    return None


def label_key(value: str) -> str | None:
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns1123_subdomain(prefix) is not None):
        return f"label key {_quote(value)}: the prefix must be a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED.fullmatch(name):
        return (
            f"label key {_quote(value)}: the name must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def label_value(value: str) -> str | None:
    if value and (len(value) > 63 or not _QUALIFIED.fullmatch(value)):
        return (
            f"label value {_quote(value)}: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None
