"""Small server-side SVG charts with labelled axes: a line over time and a histogram against a reference.

Rendered on the server so the pages need no script and no charting library from a CDN; every number drawn is
also in the page as text (a table or a <title>) for people who do not read plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 48


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if hi - lo <= 0:
        return [lo]
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.2g}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class _Frame:
    x0: float
    x1: float
    y0: float
    y1: float

    def sx(self, x: float) -> float:
        span = self.x1 - self.x0 or 1.0
        return round(LEFT + (x - self.x0) / span * (WIDTH - LEFT - RIGHT), 2)

    def sy(self, y: float) -> float:
        span = self.y1 - self.y0 or 1.0
        return round(HEIGHT - BOTTOM - (y - self.y0) / span * (HEIGHT - TOP - BOTTOM), 2)


def _axes(frame: _Frame, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[float], x_label: str, y_label: str):
    bottom, top = HEIGHT - BOTTOM, TOP
    y_marks = format_html_join(
        "",
        '<line class="grid" x1="{l}" y1="{y}" x2="{r}" y2="{y}"/><text class="tick" x="{tx}" y="{ty}" '
        'text-anchor="end">{v}</text>',
        ({"l": LEFT, "r": WIDTH - RIGHT, "y": frame.sy(v), "tx": LEFT - 6, "ty": frame.sy(v) + 4, "v": _fmt(v)}
         for v in y_ticks),
    )  # fmt: skip
    x_marks = format_html_join(
        "",
        '<line class="axis" x1="{x}" y1="{b}" x2="{x}" y2="{b5}"/><text class="tick" x="{x}" y="{ty}" '
        'text-anchor="middle">{v}</text>',
        ({"x": frame.sx(x), "b": bottom, "b5": bottom + 5, "ty": bottom + 18, "v": text} for x, text in x_ticks),
    )  # fmt: skip
    return format_html(
        '<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/><line class="axis" x1="{l}" y1="{t}" x2="{l}" '
        'y2="{b}"/>{ym}{xm}<text class="axis-label" x="{mx}" y="{lb}" text-anchor="middle">{xl}</text>'
        '<text class="axis-label" x="14" y="{my}" transform="rotate(-90 14 {my})" text-anchor="middle">{yl}</text>',
        l=LEFT, r=WIDTH - RIGHT, t=top, b=bottom, ym=y_marks, xm=x_marks, mx=(LEFT + WIDTH - RIGHT) / 2,
        lb=HEIGHT - 8, xl=x_label, my=(TOP + bottom) / 2, yl=y_label,
    )  # fmt: skip


def _svg(label: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" role="img" viewBox="0 0 {w} {h}" preserveAspectRatio="xMinYMin meet" '
        'aria-label="{label}"><title>{label}</title>{body}</svg>',
        w=WIDTH, h=HEIGHT, label=label, body=body,
    )  # fmt: skip


def time_series_svg(
    points: Sequence[tuple[datetime, float]],
    *,
    y_label: str,
    label: str,
    reference: float | None = None,
    reference_label: str = "",
    y_min: float | None = None,
) -> SafeString:
    """A line of (time, value) points with dated x ticks, value ticks and an optional horizontal reference."""
    if not points:
        return mark_safe('<p class="muted">Nothing to plot yet.</p>')
    xs = [t.timestamp() for t, _v in points]
    ys = [v for _t, v in points]
    lows = ys + ([reference] if reference is not None else [])
    y0 = min(lows) if y_min is None else min(y_min, *lows)
    y1 = max(lows)
    if y1 - y0 < 1e-12:
        y1 = y0 + (abs(y0) or 1.0) * 0.1
    pad = (y1 - y0) * 0.05
    frame = _Frame(
        min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 3600, y0 - (pad if y_min is None else 0), y1 + pad
    )
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds()
    fmt = "%H:%M:%S" if span < 600 else "%H:%M" if span < 86400 else "%m-%d"
    x_ticks = [(x, datetime.fromtimestamp(x, tz=first.tzinfo).strftime(fmt)) for x in _even(frame.x0, frame.x1, 5)]
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{frame.sx(x)},{frame.sy(y)}" for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    )
    dots = format_html_join(
        "",
        '<circle class="point" cx="{}" cy="{}" r="2.5"><title>{}: {}</title></circle>',
        ((frame.sx(x), frame.sy(y), t.strftime("%Y-%m-%d %H:%M"), _fmt(y)) for x, y, (t, _v) in zip(xs, ys, points, strict=True)),
    )  # fmt: skip
    ref = SafeString("")
    if reference is not None:
        ref = format_html(
            '<line class="reference" x1="{l}" y1="{y}" x2="{r}" y2="{y}"><title>{t}</title></line>'
            '<text class="reference-label" x="{r}" y="{ty}" text-anchor="end">{t}</text>',
            l=LEFT, r=WIDTH - RIGHT, y=frame.sy(reference), ty=frame.sy(reference) - 4,
            t=reference_label or _fmt(reference),
        )  # fmt: skip
    body = format_html(
        '{axes}{ref}<path class="series" d="{path}" fill="none"/>{dots}',
        axes=_axes(frame, x_ticks, _ticks(frame.y0, frame.y1), "time (UTC)", y_label),
        ref=ref,
        path=path,
        dots=dots,
    )
    return _svg(label, body)


def _even(lo: float, hi: float, count: int) -> list[float]:
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def histogram_svg(
    values: Sequence[float], *, bins: int, lo: float, hi: float, x_label: str, label: str, expected: float | None = None
) -> SafeString:
    """Counts of ``values`` in ``bins`` equal bins over [lo, hi], with a dashed line at the ``expected`` count."""
    if not values:
        return mark_safe('<p class="muted">Nothing to plot yet.</p>')
    counts = [0] * bins
    width = (hi - lo) / bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
    top = max([*counts, expected or 0]) * 1.1 or 1
    frame = _Frame(lo, hi, 0.0, top)
    bars = format_html_join(
        "",
        '<rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}"><title>{a}–{b}: {n}</title></rect>',
        ({"x": frame.sx(lo + i * width) + 1, "y": frame.sy(n), "w": max(1, frame.sx(lo + width) - frame.sx(lo) - 2),
          "h": round(frame.sy(0) - frame.sy(n), 2), "a": _fmt(lo + i * width), "b": _fmt(lo + (i + 1) * width), "n": n}
         for i, n in enumerate(counts)),
    )  # fmt: skip
    ref = SafeString("")
    if expected is not None:
        ref = format_html(
            '<line class="reference" x1="{l}" y1="{y}" x2="{r}" y2="{y}"><title>expected under uniform: {v}</title>'
            '</line><text class="reference-label" x="{r}" y="{ty}" text-anchor="end">uniform: {v}</text>',
            l=LEFT, r=WIDTH - RIGHT, y=frame.sy(expected), ty=frame.sy(expected) - 4, v=_fmt(expected),
        )  # fmt: skip
    x_ticks = [(x, _fmt(x)) for x in _ticks(lo, hi, 6)]
    body = format_html(
        "{axes}{bars}{ref}", axes=_axes(frame, x_ticks, _ticks(0, top), x_label, "count"), bars=bars, ref=ref
    )
    return _svg(label, body)
