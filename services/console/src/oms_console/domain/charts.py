"""Small SVG charts drawn on the server (no front-end library): horizontal bars and
line charts. Colours come from CSS classes, so the page's stylesheet themes them."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 360
ROW = 26
LABEL = 110


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3f}".rstrip("0").rstrip(".")


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float | None]],
    *,
    scale_max: float | None = None,
    unit: str = "",
    marker: float | None = None,
    marker_label: str = "",
) -> str:
    """One labelled horizontal bar per (label, value); None is drawn as "n/a".
    `marker` draws a vertical reference line (e.g. the target utilisation)."""
    values = [v for _, v in bars if v is not None]
    top = scale_max or max([*values, marker or 0, 1e-9])
    span = WIDTH - LABEL - 60
    height = ROW * len(bars) + 24
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for index, (label, value) in enumerate(bars):
        y = 8 + index * ROW
        parts.append(f'<text class="label" x="0" y="{y + 14}">{escape(label)}</text>')
        if value is None:
            parts.append(f'<text class="value" x="{LABEL}" y="{y + 14}">n/a</text>')
            continue
        length = max(0.0, min(value / top, 1.0)) * span
        over = " over" if scale_max is not None and value > scale_max else ""
        parts.append(
            f'<rect class="bar{over}" x="{LABEL}" y="{y}" width="{length:.1f}" height="18" rx="3"/>'
        )
        parts.append(
            f'<text class="value" x="{LABEL + length + 4:.1f}" y="{y + 14}">'
            f"{escape(_number(value) + unit)}</text>"
        )
    if marker is not None:
        x = LABEL + min(marker / top, 1.0) * span
        parts.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="2" y2="{height - 14}"/>'
            f'<text class="marker-label" x="{x:.1f}" y="{height - 2}" text-anchor="middle">'
            f"{escape(marker_label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str = "",
    at_least: float = 0.0,
) -> str:
    """Several series over the same samples (oldest first); gaps where None. The
    scale reaches `at_least` (e.g. one message) so noise near zero stays flat."""
    height, left, bottom, top_pad = 150, 40, 20, 10
    plot_w, plot_h = WIDTH - left - 10, height - bottom - top_pad
    samples = max((len(points) for _, points in series), default=0)
    values = [v for _, points in series for v in points if v is not None]
    top = max([*values, at_least, 1e-9]) * 1.1
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height + 18 * len(series)}" '
        f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line class="axis" x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" '
        f'y2="{top_pad + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}"/>',
        f'<text class="tick" x="{left - 4}" y="{top_pad + 8}" text-anchor="end">'
        f"{escape(_number(top / 1.1))}</text>",
        f'<text class="tick" x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
    ]
    for index, (name, points) in enumerate(series):
        step = plot_w / max(samples - 1, 1)
        segments: list[list[str]] = [[]]
        for i, value in enumerate(points):
            if value is None:
                segments.append([])
                continue
            x = left + i * step
            y = top_pad + plot_h - (value / top) * plot_h
            segments[-1].append(f"{x:.1f},{y:.1f}")
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle class="series-{index}" cx="{cx}" cy="{cy}" r="2.5"/>')
            elif segment:
                parts.append(
                    f'<polyline class="series-{index}" fill="none" points="{" ".join(segment)}"/>'
                )
        latest = next((v for v in reversed(points) if v is not None), None)
        legend_y = height + 18 * index
        parts.append(
            f'<rect class="swatch-{index}" x="{left}" y="{legend_y - 9}" width="10" height="10"/>'
            f'<text class="label" x="{left + 16}" y="{legend_y}">{escape(name)}: '
            f"{escape('-' if latest is None else _number(latest) + unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
