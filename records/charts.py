"""Trend charts drawn on the server as inline SVG: no JavaScript, an accessible
table beside each one."""

from decimal import Decimal

WIDTH, HEIGHT, PAD = 640, 220, 36


def trend(points, low=None, high=None):
    """Geometry for ``templates/records/trend.html``: ``points`` is a list of
    (date, value) in time order; ``low``/``high`` draw the reference band."""
    if not points:
        return None
    values = [Decimal(v) for _, v in points] + [Decimal(x) for x in (low, high) if x is not None]
    vmin, vmax = min(values), max(values)
    if vmin == vmax:
        vmin, vmax = vmin - 1, vmax + 1
    span = vmax - vmin
    vmin, vmax = vmin - span / 10, vmax + span / 10
    days = [(d - points[0][0]).days for d, _ in points]
    last = max(days[-1], 1)

    def x(day):
        return round(PAD + (WIDTH - 2 * PAD) * day / last, 1)

    def y(value):
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * float((Decimal(value) - vmin) / (vmax - vmin)), 1)

    dots = [{"x": x(day), "y": y(v), "date": d, "value": v} for day, (d, v) in zip(days, points, strict=True)]
    band = None
    if low is not None and high is not None:
        band = {"y": y(high), "height": round(y(low) - y(high), 1)}
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "polyline": " ".join(f"{dot['x']},{dot['y']}" for dot in dots),
        "dots": dots,
        "band": band,
        "axis_y": HEIGHT - PAD,
        "axis_right": WIDTH - PAD,
        "label_max": vmax.quantize(Decimal("0.1")),
        "label_min": vmin.quantize(Decimal("0.1")),
        "first": points[0][0],
        "last": points[-1][0],
    }
