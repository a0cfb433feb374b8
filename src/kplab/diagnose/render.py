"""The report on a terminal (rich) and as JSON."""

from __future__ import annotations

import json

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from kplab.diagnose.model import Report, Severity

STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def to_json(report: Report) -> str:
    return json.dumps(report.as_json(), allow_nan=False, indent=2, sort_keys=False) + "\n"


def to_console(report: Report, console: Console) -> None:
    given = ", ".join(k for k in report.inputs if k != "live") or "nothing"
    console.print(
        Text(f"kplab doctor: read {given}" + (" (live, read-only)" if report.inputs.get("live") else ""))
    )
    if not report.findings:
        console.print(Text("No findings: nothing here points at the escaped-NAT reset.", style="green"))
        return
    for f in report.findings:
        body = Text()
        body.append(f.meaning + "\n")
        body.append("\nEvidence:\n", style="bold")
        for line in f.evidence:
            body.append(f"  {line}\n")
        if f.fix:
            body.append("\nFix:\n", style="bold")
            for line in f.fix:
                body.append(f"  - {line}\n")
        title = Text(f"{f.severity.label.upper()}  {f.id}: {f.title}", style=STYLE[f.severity])
        console.print(Panel(body, title=title, title_align="left", border_style=STYLE[f.severity]))
