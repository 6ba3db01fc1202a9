"""Server-side SVG of a PCS's box counts: log2 N_j against log2 scale with the claimed and recomputed lines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import median

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 420, 260, 40
MAX_TICKS = 8


def integer_ticks(low: float, high: float) -> list[int]:
    """Whole numbers within [low, high], every one or every n-th so that at most MAX_TICKS remain."""
    first, last = math.ceil(low - 1e-9), math.floor(high + 1e-9)
    if last < first:
        return []
    step = max(1, math.ceil((last - first + 1) / MAX_TICKS))
    return list(range(first, last + 1, step))


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
        '<circle class="point" cx="{}" cy="{}" r="5" data-scale="{}" data-count="{}">'
        "<title>scale {} (log2 {}): N = {} (log2 {})</title></circle>",
        ((sx(x), sy(y), s, counts[str(s)], s, f"{x:.2f}", counts[str(s)], f"{y:.2f}")
         for (x, y), s in zip(pts, [s for s in scales if counts.get(str(s), 0) > 0], strict=True)),
    )  # fmt: skip
    # Ticks on whole powers of two: the x labels are the scales, the y labels log2 N_j.
    x_ticks = format_html_join(
        "",
        '<line class="tick" x1="{x}" y1="{b}" x2="{x}" y2="{b5}"/>'
        '<text class="tick-label x-tick" x="{x}" y="{ty}" text-anchor="middle">{label}</text>',
        ({"x": sx(k), "b": HEIGHT - PAD, "b5": HEIGHT - PAD + 5, "ty": HEIGHT - PAD + 16,
          "label": f"{2**k:g}" if k >= 0 else f"2^{k}"} for k in integer_ticks(x0, x1)),
    )  # fmt: skip
    y_ticks = format_html_join(
        "",
        '<line class="grid" x1="{p}" y1="{y}" x2="{r}" y2="{y}"/><line class="tick" x1="{p5}" y1="{y}" x2="{p}" y2="{y}"/>'
        '<text class="tick-label y-tick" x="{tx}" y="{y4}" text-anchor="end">{k}</text>',
        ({"p": PAD, "r": WIDTH - PAD, "p5": PAD - 5, "y": sy(k), "y4": sy(k) + 4, "tx": PAD - 7, "k": k}
         for k in integer_ticks(y0, y1)),
    )  # fmt: skip
    return format_html(
        '<svg class="scaling-plot" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'aria-label="log2 N_j against log2 scale">'
        '<line class="axis" x1="{p}" y1="{b}" x2="{r}" y2="{b}"/><line class="axis" x1="{p}" y1="{p}" x2="{p}" y2="{b}"/>'
        '<text x="{mx}" y="{ty}" text-anchor="middle">scale (log2 axis)</text>'
        '<text x="10" y="{my}" transform="rotate(-90 10 {my})" text-anchor="middle">log2 N_j</text>'
        "{x_ticks}{y_ticks}{segments}{dots}</svg>",
        w=WIDTH, h=HEIGHT, p=PAD, b=HEIGHT - PAD, r=WIDTH - PAD, mx=WIDTH / 2, ty=HEIGHT - 6, my=HEIGHT / 2,
        segments=segments, dots=dots, x_ticks=x_ticks, y_ticks=y_ticks,
    )  # fmt: skip
