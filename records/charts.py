"""Trend charts drawn on the server as inline SVG: no JavaScript, an accessible
table beside each one."""

import math
from decimal import Decimal

from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from portal.rows import escaped
from records.display import measured

# Room on the left for the y labels and below for the dates: the labels are drawn
# large enough (CSS) to stay legible when the chart shrinks to a phone's width.
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 72, 20, 16, 40
MARK = 7  # half the size of a point's marker


def nice_step(span: float, ticks: int = 4) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw) * magnitude
    return Decimal(str(step)).normalize()


def marker(x, y, side):
    """A point's shape: a circle in range (None here), a triangle pointing up above the
    range, down below it: told by shape as well as colour. ``x`` and ``y`` are rounded to
    0.1, so each corner is worked out in tenths, as integers: the same numbers, and the
    same text, as rounding each corner's float to 0.1 and printing it."""
    if side is None:
        return None
    tenths_x, tenths_y = round(x * 10), round(y * 10)
    tip, base = (-MARK * 10, MARK * 8) if side == "high" else (MARK * 10, -MARK * 8)
    corners = (
        (tenths_x, tenths_y + tip),
        (tenths_x + MARK * 10, tenths_y + base),
        (tenths_x - MARK * 10, tenths_y + base),
    )
    return " ".join(f"{_tenths_text(cx)},{_tenths_text(cy)}" for cx, cy in corners)


def _tenths_text(tenths: int) -> str:
    """``repr(tenths / 10)``: for a positive number, its digits with the point before the last."""
    return f"{tenths // 10}.{tenths % 10}" if tenths > 0 else repr(tenths / 10)


def trend(points, low=None, high=None):
    """Geometry for ``figure_html``: ``points`` is a list of (date, value) in time
    order; ``low``/``high`` draw the reference band, and mark the points outside it."""
    if not points:
        return None
    values = [Decimal(v) for _, v in points] + [Decimal(x) for x in (low, high) if x is not None]
    vmin, vmax = min(values), max(values)
    if vmin == vmax:
        vmin, vmax = vmin - 1, vmax + 1
    step = nice_step(float(vmax - vmin))
    # The axis runs from the round tick below the lowest value to the one above the highest.
    vmin = (vmin / step).to_integral_value(rounding="ROUND_FLOOR") * step
    vmax = (vmax / step).to_integral_value(rounding="ROUND_CEILING") * step
    days = [(d - points[0][0]).days for d, _ in points]
    last = max(days[-1], 1)
    bottom = HEIGHT - BOTTOM
    height, span, plot_width = bottom - TOP, vmax - vmin, WIDTH - LEFT - RIGHT
    high_limit, low_limit = (None if limit is None else Decimal(limit) for limit in (high, low))

    def y(value):
        return round(bottom - height * float((Decimal(value) - vmin) / span), 1)

    def side(value):
        if high_limit is not None and Decimal(value) > high_limit:
            return "high"
        if low_limit is not None and Decimal(value) < low_limit:
            return "low"
        return None

    # A series repeats its values (a test's precision is a lab's): each value's height, its
    # text and its side are worked out once; each point's coordinates are written once, for
    # the polyline and for its shape (a float's text is the costly part of a point). The
    # points' x in one pass, each rounded to 0.1.
    placed, coordinates, shapes, out_of_range = {}, [], [], False
    xs = [round(LEFT + plot_width * day / last, 1) for day in days]
    for dot_x, (_d, v) in zip(xs, points, strict=True):
        placement = placed.get(v)
        if placement is None:
            dot_y = y(v)
            placement = placed[v] = (dot_y, repr(dot_y), side(v))
        dot_y, y_text, dot_side = placement
        x_text = repr(dot_x)
        coordinates.append(f"{x_text},{y_text}")
        # A polygon outside the range (its marker), else a circle; the coordinates as
        # ``|unlocalize`` prints them (and as the polyline has them): a float rounded to
        # 0.1, never in exponent form.
        if dot_side:
            out_of_range, corners = True, marker(dot_x, dot_y, dot_side)
            shapes.append(f'\n      <polygon class="trend-dot trend-dot-{dot_side}" points="{corners}"/>\n    ')
        else:
            shapes.append(f'\n      <circle class="trend-dot" cx="{x_text}" cy="{y_text}" r="5"/>\n    ')
    count = int((vmax - vmin) / step)
    ticks = [{"y": y(vmin + i * step), "value": vmin + i * step} for i in range(count + 1)]
    band = None
    if low is not None and high is not None:
        band = {"y": y(high), "height": round(y(low) - y(high), 1), "low": low, "high": high}
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "plot_width": WIDTH - LEFT - RIGHT,
        "polyline": " ".join(coordinates),
        "dots_svg": mark_safe("".join(shapes)),  # noqa: S308 (numbers and the side's name, "high" or "low", only)
        "band": band,
        "ticks": ticks,
        "axis_y": bottom,
        "date_y": HEIGHT - 10,
        "out_of_range": out_of_range,
        "first": points[0][0],
        "last": points[-1][0],
    }


# A chart's figure as templates/records/trend.html wrote it (tests/records/test_charts.py
# holds the two equal), written once per chart here: with its ticks and coordinates, the
# include cost more than the rest of a test's history page. Numbers print as ``|unlocalize``
# prints them: an int, or a float rounded to 0.1 (never in exponent form).
FIGURE = """
<figure class="trend">
  <svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="{id}-title" focusable="false">
    <title id="{id}-title">{title}</title>
    {band}
    {ticks}
    <line class="trend-axis" x1="{left}" y1="{axis_y}" x2="{right}" y2="{axis_y}"/>
    <line class="trend-axis" x1="{left}" y1="{top}" x2="{left}" y2="{axis_y}"/>
    <text class="trend-label" x="{left}" y="{date_y}">{first}</text>
    <text class="trend-label" text-anchor="end" x="{right}" y="{date_y}">{last}</text>
    <polyline class="trend-line" points="{polyline}"/>
    {dots}
  </svg>
  {legend}
  <figcaption>{caption}</figcaption>
</figure>
"""
TICK = """
      <line class="trend-grid" x1="{left}" y1="{y}" x2="{right}" y2="{y}"/>
      <text class="trend-label" text-anchor="end" dominant-baseline="middle" x="{label_x}" y="{y}">{value}</text>
    """
BAND = '<rect class="trend-band" x="{left}" y="{y}" width="{width}" height="{height}"/>'
LEGEND = """
    <ul class="trend-legend">
      {band}
      {out}
    </ul>
  """


def figure_html(chart, chart_id, title):
    """``chart`` (``trend``'s geometry, or None: nothing) as a figure: the SVG titled
    ``title`` (its ids start with ``chart_id``), its legend and its caption."""
    if not chart:
        return "\n"
    band = chart["band"]
    ticks = "".join(
        TICK.format(left=chart["left"], right=chart["right"], label_x=chart["left"] - 8, y=tick["y"],
                    value=escaped(measured(tick["value"])))
        for tick in chart["ticks"]
    )  # fmt: skip
    legend = ""
    if band or chart["out_of_range"]:
        band_text = (
            '<li><span class="trend-swatch trend-swatch-band" aria-hidden="true"></span> '
            + gettext("Reference range (%(low)s – %(high)s)")
            % {"low": escaped(measured(band["low"])), "high": escaped(measured(band["high"]))}
            + "</li>"
            if band
            else ""
        )
        out_text = (
            '<li><span class="trend-swatch trend-swatch-out" aria-hidden="true">▲▼</span> '
            + gettext("Outside the reference range (above, below)")
            + "</li>"
            if chart["out_of_range"]
            else ""
        )
        legend = LEGEND.format(band=band_text, out=out_text)
    html = FIGURE.format(
        width=chart["width"], height=chart["height"], id=escaped(chart_id), title=escaped(title),
        band=BAND.format(left=chart["left"], y=band["y"], width=chart["plot_width"], height=band["height"])
        if band else "",
        ticks=ticks, left=chart["left"], right=chart["right"], top=chart["top"], axis_y=chart["axis_y"],
        date_y=chart["date_y"], first=escaped(date_format(chart["first"], "SHORT_DATE_FORMAT")),
        last=escaped(date_format(chart["last"], "SHORT_DATE_FORMAT")), polyline=chart["polyline"],
        dots=chart["dots_svg"], legend=legend, caption=gettext("The values are also in the table."),
    )  # fmt: skip
    return mark_safe(html + "\n")  # noqa: S308 (numbers, escaped texts, translations)
