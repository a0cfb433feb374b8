import xml.etree.ElementTree as ET

from kplab.report.sequence import Diagram, Message, to_mermaid, to_svg

DIAGRAM = Diagram(
    title="Connection reset packet flow",
    lanes=("client pod", "client node", "server pod"),
    messages=(
        Message(
            1_000_000, "server pod", "client node", "10.0.1.2:80 > 10.0.0.2:40000 A", "conntrack INVALID"
        ),
        Message(
            1_100_000,
            "client node",
            "client pod",
            "10.0.1.2:80 > 10.0.0.2:40000 A",
            "not reverse-NATed",
            True,
        ),
        Message(1_200_000, "client pod", "server pod", "10.0.0.2:40000 > 10.0.1.2:80 R", bad=True),
    ),
)


def test_svg_is_well_formed_and_has_every_message() -> None:
    svg = to_svg(DIAGRAM)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for m in DIAGRAM.messages:
        assert m.label in texts
    assert "conntrack INVALID" in texts
    assert svg.count("#c0392b") >= 2  # the two bad packets are red


def test_mermaid_lists_participants_and_arrows() -> None:
    text = to_mermaid(DIAGRAM)
    assert text.startswith("sequenceDiagram\n")
    assert "participant L0 as client pod" in text
    assert "L2-xL0" not in text and "L0-xL2" in text  # the RST is a failed (bad) arrow
    assert text.count("->>") == 1
