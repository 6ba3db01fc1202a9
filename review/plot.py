"""Server-side SVG of a PCS's box counts: log2 N_j against log2 scale with the claimed and recomputed lines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import median

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 420, 260, 40


def _line_through(xs: Sequence[float], ys: Sequence[float], slope: float) -> float:
    """Intercept of a line of the given slope through the point cloud (Theil–Sen style: median residual)."""
    return median(y - slope * x for x, y in zip(xs, ys, strict=True))


def scaling_plot_svg(scales: Sequence[int], counts: Mapping[str, int], claimed: float, recomputed: float) -> SafeString:
    """An inline SVG: the points (log2 scale, log2 N_j), the claimed D̂ line (dashed) and the recomputed one."""
    pts = [(math.log2(s), math.log2(counts[str(s)])) for s in scales if counts.get(str(s), 0) > 0]
    if len(pts) < 2:
        return mark_safe('<p class="muted">Not enough box counts to plot.</p>')
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    # The claimed line is drawn last (dashed) so it stays visible when both lines coincide.
    lines = {"recomputed": recomputed, "claimed": claimed}
    intercepts = {name: _line_through(xs, ys, slope) for name, slope in lines.items()}
    x0, x1 = min(xs), max(xs)
    line_ys = [intercepts[n] + lines[n] * x for n in lines for x in (x0, x1)]
    y0, y1 = min(ys + line_ys), max(ys + line_ys)
    if y1 - y0 < 1e-9:
        y1 = y0 + 1.0
    if x1 - x0 < 1e-9:
        x1 = x0 + 1.0

    def sx(x: float) -> float:
        return round(PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD), 2)

    def sy(y: float) -> float:
        return round(HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD), 2)

    segments = format_html_join(
        "",
        '<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}"><title>{} D̂ = {}</title></line>',
        (
            (f"fit-{name}", sx(x0), sy(intercepts[name] + slope * x0), sx(x1), sy(intercepts[name] + slope * x1),
             name, f"{slope:.4f}")
            for name, slope in lines.items()
        ),
    )  # fmt: skip
    dots = format_html_join(
        "",
        '<circle class="point" cx="{}" cy="{}" r="4"><title>scale {}: N = {}</title></circle>',
        ((sx(x), sy(y), s, counts[str(s)]) for (x, y), s in zip(pts, [s for s in scales if counts.get(str(s), 0) > 0], strict=True)),
    )  # fmt: skip
    return format_html(
        '<svg class="scaling-plot" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'aria-label="log2 N_j against log2 scale">'
        '<line class="axis" x1="{p}" y1="{b}" x2="{r}" y2="{b}"/><line class="axis" x1="{p}" y1="{p}" x2="{p}" y2="{b}"/>'
        '<text x="{mx}" y="{ty}" text-anchor="middle">log2 scale</text>'
        '<text x="12" y="{my}" transform="rotate(-90 12 {my})" text-anchor="middle">log2 N_j</text>'
        "{segments}{dots}</svg>",
        w=WIDTH, h=HEIGHT, p=PAD, b=HEIGHT - PAD, r=WIDTH - PAD, mx=WIDTH / 2, ty=HEIGHT - 8, my=HEIGHT / 2,
        segments=segments, dots=dots,
    )  # fmt: skip
