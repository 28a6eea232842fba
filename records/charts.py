"""Trend charts drawn on the server as inline SVG: no JavaScript, an accessible
table beside each one."""

import math
from decimal import Decimal

from django.utils.safestring import mark_safe

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
    range, down below it: told by shape as well as colour."""
    if side is None:
        return None
    tip, base = (-MARK, MARK * 0.8) if side == "high" else (MARK, -MARK * 0.8)
    corners = [(x, y + tip), (x + MARK, y + base), (x - MARK, y + base)]
    return " ".join(f"{round(cx, 1)},{round(cy, 1)}" for cx, cy in corners)


def dots_svg(dots):
    """The chart's points as ``trend.html`` drew them one by one (a polygon outside the
    range, else a circle), written once here: a chart has up to a hundred points. The
    coordinates print as ``|unlocalize`` prints them (and as the polyline has them): a
    float rounded to 0.1, never in exponent form."""
    shapes = []
    for dot in dots:
        if dot["marker"]:
            shape = f'<polygon class="trend-dot trend-dot-{dot["side"]}" points="{dot["marker"]}"/>'
        else:
            shape = f'<circle class="trend-dot" cx="{dot["x"]}" cy="{dot["y"]}" r="5"/>'
        shapes.append(f"\n      {shape}\n    ")
    return mark_safe("".join(shapes))  # noqa: S308 (numbers and the side's name, "high" or "low", only)


def trend(points, low=None, high=None):
    """Geometry for ``templates/records/trend.html``: ``points`` is a list of
    (date, value) in time order; ``low``/``high`` draw the reference band, and mark
    the points outside it."""
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

    def x(day):
        return round(LEFT + (WIDTH - LEFT - RIGHT) * day / last, 1)

    def y(value):
        return round(bottom - (bottom - TOP) * float((Decimal(value) - vmin) / (vmax - vmin)), 1)

    def side(value):
        if high is not None and Decimal(value) > Decimal(high):
            return "high"
        if low is not None and Decimal(value) < Decimal(low):
            return "low"
        return None

    dots = []
    for day, (d, v) in zip(days, points, strict=True):
        dot = {"x": x(day), "y": y(v), "date": d, "value": v, "side": side(v)}
        dot["marker"] = marker(dot["x"], dot["y"], dot["side"])
        dots.append(dot)
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
        "polyline": " ".join(f"{dot['x']},{dot['y']}" for dot in dots),
        "dots": dots,
        "dots_svg": dots_svg(dots),
        "band": band,
        "ticks": ticks,
        "axis_y": bottom,
        "date_y": HEIGHT - 10,
        "out_of_range": any(dot["side"] for dot in dots),
        "first": points[0][0],
        "last": points[-1][0],
    }
