"""Bar charts as inline SVG: the page needs no file, no script and no network to show them."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

BAR_HEIGHT = 22
LABEL_WIDTH = 140
BAR_WIDTH = 360
VALUE_WIDTH = 90
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def bars(title: str, values: Mapping[str, float | None]) -> str:
    """One bar per name, longest for the largest value; a missing value says so, drawn as none."""
    shown = {name: v for name, v in values.items() if v is not None and v >= 0}
    top = max(shown.values(), default=0.0) or 1.0
    height = BAR_HEIGHT * (len(values) + 1) + 8
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text x="0" y="15" class="chart-title">{escape(title)}</text>',
    ]
    for index, (name, value) in enumerate(values.items()):
        y = BAR_HEIGHT * (index + 1) + 4
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(name)}</text>'
        )
        if value is None or value < 0:
            parts.append(f'<text x="{LABEL_WIDTH}" y="{y + 15}">not measured</text>')
            continue
        length = max(1.0, BAR_WIDTH * value / top)
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{length:.1f}" height="{BAR_HEIGHT - 6}" '
            f'fill="{colour}"><title>{escape(name)}: {value:,.1f}</title></rect>'
        )
        parts.append(f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 15}">{value:,.1f}</text>')
    parts.append("</svg>")
    return "".join(parts)
