"""Keyset pagination: "older" and "newer" pages that cost what the first page costs.

A page number makes the database count and skip every row before it (OFFSET); a
cursor lets it start from an index position. The cursor is the id of the row at the
page's edge, looked up in the same queryset (so whatever scoped it, the access
policy first, applies to the cursor too) and never a value of the row: a date of
care or a name in a URL would be health data.

``older`` asks for the page after the cursor in the list's order, ``newer`` for the
page before it (for a list in alphabetical order: next and previous).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from portal.prepared import prepared


@dataclass
class KeysetPage:
    object_list: list
    older: int | None  # id to ask for the next page; None on the last page
    newer: int | None  # id to ask for the previous page; None on the first page

    def has_other_pages(self) -> bool:
        return self.older is not None or self.newer is not None


def _beyond(fields, anchor, *, forward: bool, descending: bool) -> Q:
    """Rows after the anchor row in the list's order by (*fields, pk) (before it when
    not ``forward``), written so that PostgreSQL can start an index range scan at the
    anchor: the redundant bound on the first field alone is the one the index uses."""
    op = "lt" if descending == forward else "gt"
    keys = [*fields, "pk"]
    after = Q()
    for index, key in enumerate(keys):
        equal = {name: anchor[name] for name in keys[:index]}
        after |= Q(**equal, **{f"{key}__{op}": anchor[key]})
    return Q(**{f"{fields[0]}__{op}e": anchor[fields[0]]}) & after


def older_than(queryset: QuerySet, cursor, *, field: str, size: int) -> tuple[list, int | None] | None:
    """Up to ``size`` rows of ``queryset`` newest first by (``field``, id), after the row
    whose id is ``cursor`` (from the start without one), and the cursor of the rows
    after them (None at the end). None when ``cursor`` is not a row of ``queryset``:
    an API says so rather than starting again."""
    newest_first = queryset.order_by(f"-{field}", "-pk")
    if cursor:
        anchor = queryset.filter(pk=cursor).values(field, "pk").first() if str(cursor).isdecimal() else None
        if anchor is None:
            return None
        newest_first = newest_first.filter(_beyond((field,), anchor, forward=True, descending=True))
    rows = list(newest_first[: size + 1])
    return rows[:size], (rows[size - 1].pk if len(rows) > size else None)


@dataclass(frozen=True)
class Rows:
    """A list's queryset given as its builder (a function of the module, taking the
    values positionally and the shape by keyword), values and shape, rather than built:
    ``keyset_page`` then runs prepared queries (``portal.prepared``)."""

    build: Callable
    values: tuple
    shape: tuple = ()  # (name, value) pairs, by name

    @classmethod
    def of(cls, build, *values, **shape) -> "Rows":
        if "<" in build.__qualname__:  # a lambda or a nested function: a new key at every call
            raise ValueError("Rows takes a function of a module")
        return cls(build, values, tuple(sorted(shape.items())))

    def queryset(self) -> QuerySet:
        return self.build(*self.values, **dict(self.shape))


# Every keyset list's queries are of these two builders: room for the shapes of each
# list (its filters, first page or from a cursor).
LIST_SHAPES = 512


def _anchor_values(*values, build, shape, fields):
    """The cursor row's ``fields`` and id, the cursor being the last of ``values``."""
    *values, cursor = values
    return build(*values, **dict(shape)).filter(pk=cursor).values_list(*fields, "pk")[:1]


def _rows_from(*values, build, shape, order, fields, beyond, size):
    """Up to ``size`` rows in ``order``; ``beyond`` (forward, descending): after the anchor
    row whose ``fields`` and id end ``values`` (from the start when None)."""
    if beyond is None:
        return build(*values, **dict(shape)).order_by(*order)[:size]
    count = len(fields) + 1
    anchor = dict(zip((*fields, "pk"), values[-count:], strict=True))
    forward, descending = beyond
    rows = build(*values[:-count], **dict(shape)).order_by(*order)
    return rows.filter(_beyond(fields, anchor, forward=forward, descending=descending))[:size]


_prepared_anchor, _prepared_rows = (prepared(build, max_shapes=LIST_SHAPES) for build in (_anchor_values, _rows_from))


def _anchor(source, cursor: str, fields) -> dict | None:
    """The row of ``source`` whose id is ``cursor`` (its ``fields`` and id), or None."""
    if not cursor.isdecimal():
        return None
    if isinstance(source, Rows):
        found = _prepared_anchor(*source.values, int(cursor), build=source.build, shape=source.shape, fields=fields)
        return dict(zip((*fields, "pk"), found[0], strict=True)) if found else None
    return source.filter(pk=cursor).values(*fields, "pk").first()


def _rows(source, order, fields, size, *, anchor=None, forward=True, descending=True) -> list:
    """Up to ``size`` rows of ``source`` in ``order``, after ``anchor`` when given."""
    if isinstance(source, Rows):
        beyond, values = None, source.values
        if anchor is not None:
            beyond, values = (forward, descending), (*values, *(anchor[name] for name in (*fields, "pk")))
        return _prepared_rows(
            *values, build=source.build, shape=source.shape, order=order, fields=fields, beyond=beyond, size=size
        )
    rows = source.order_by(*order)
    if anchor is not None:
        rows = rows.filter(_beyond(fields, anchor, forward=forward, descending=descending))
    return list(rows[:size])


def keyset_page(
    source: QuerySet | Rows, params, *, field: str = "", fields=(), size: int, descending: bool = True
) -> KeysetPage:
    """One page of ``source`` (a queryset, or ``Rows``: by prepared queries) ordered by
    (``field``, id), newest first, or by (*``fields``, id) ascending when ``descending``
    is False; from the ``older`` or ``newer`` cursor in ``params`` (request.GET); the first
    page without either."""
    fields = tuple(fields) or (field,)
    cursor = params.get("older") or params.get("newer") or ""
    anchor = _anchor(source, cursor, fields)
    sign = "-" if descending else ""
    in_order = tuple(f"{sign}{name}" for name in (*fields, "pk"))
    if anchor is None:
        rows = _rows(source, in_order, fields, size + 1)
        return KeysetPage(rows[:size], rows[size - 1].pk if len(rows) > size else None, None)
    if params.get("older"):
        rows = _rows(source, in_order, fields, size + 1, anchor=anchor, forward=True, descending=descending)
        if rows:
            return KeysetPage(rows[:size], rows[size - 1].pk if len(rows) > size else None, rows[0].pk)
    else:
        back = "" if descending else "-"
        reversed_order = tuple(f"{back}{name}" for name in (*fields, "pk"))
        rows = _rows(source, reversed_order, fields, size + 1, anchor=anchor, forward=False, descending=descending)
        if len(rows) > size:
            page = rows[:size][::-1]
            return KeysetPage(page, page[-1].pk, page[0].pk)
    # Nothing beyond the cursor, or the first rows reached: the first page.
    return keyset_page(source, {}, fields=fields, size=size, descending=descending)
