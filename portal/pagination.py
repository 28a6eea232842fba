"""Keyset pagination: "older" and "newer" pages that cost what the first page costs.

A page number makes the database count and skip every row before it (OFFSET); a
cursor lets it start from an index position. The cursor is the id of the row at the
page's edge, looked up in the same queryset (so whatever scoped it, the access
policy first, applies to the cursor too) and never a value of the row: a date of
care or a name in a URL would be health data.

``older`` asks for the page after the cursor in the list's order, ``newer`` for the
page before it (for a list in alphabetical order: next and previous).
"""

from dataclasses import dataclass

from django.db.models import Q, QuerySet


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


def keyset_page(
    queryset: QuerySet, params, *, field: str = "", fields=(), size: int, descending: bool = True
) -> KeysetPage:
    """One page of ``queryset`` ordered by (``field``, id), newest first, or by
    (*``fields``, id) ascending when ``descending`` is False; from the ``older`` or
    ``newer`` cursor in ``params`` (request.GET); the first page without either."""
    fields = tuple(fields) or (field,)
    cursor = params.get("older") or params.get("newer") or ""
    anchor = queryset.filter(pk=cursor).values(*fields, "pk").first() if cursor.isdecimal() else None
    sign = "-" if descending else ""
    in_order = queryset.order_by(*(f"{sign}{name}" for name in (*fields, "pk")))
    if anchor is None:
        rows = list(in_order[: size + 1])
        return KeysetPage(rows[:size], rows[size - 1].pk if len(rows) > size else None, None)
    if params.get("older"):
        rows = list(in_order.filter(_beyond(fields, anchor, forward=True, descending=descending))[: size + 1])
        if rows:
            return KeysetPage(rows[:size], rows[size - 1].pk if len(rows) > size else None, rows[0].pk)
    else:
        back = "" if descending else "-"
        reversed_order = queryset.order_by(*(f"{back}{name}" for name in (*fields, "pk")))
        rows = list(reversed_order.filter(_beyond(fields, anchor, forward=False, descending=descending))[: size + 1])
        if len(rows) > size:
            page = rows[:size][::-1]
            return KeysetPage(page, page[-1].pk, page[0].pk)
    # Nothing beyond the cursor, or the first rows reached: the first page.
    return keyset_page(queryset, {}, fields=fields, size=size, descending=descending)
