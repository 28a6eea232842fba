"""Keyset pagination: "older" and "newer" pages that cost what the first page costs.

A page number makes the database count and skip every row before it (OFFSET); a
cursor lets it start from an index position. The cursor is the id of the row at the
page's edge, looked up in the same queryset (so whatever scoped it, the access
policy first, applies to the cursor too) and never a value of the row: a date of
care in a URL would be health data.
"""

from dataclasses import dataclass

from django.db.models import Q, QuerySet


@dataclass
class KeysetPage:
    object_list: list
    older: int | None  # id to ask for the next, older page; None on the last page
    newer: int | None  # id to ask for the previous, newer page; None on the first page

    def has_other_pages(self) -> bool:
        return self.older is not None or self.newer is not None


def _beyond(field, value, pk, *, older) -> Q:
    """Rows after (field, pk) = (value, pk) in descending order (before it when not
    ``older``), written so that PostgreSQL can start an index range scan at ``value``:
    the redundant bound on ``field`` alone is the one the index uses."""
    lt, lte = ("lt", "lte") if older else ("gt", "gte")
    return Q(**{f"{field}__{lte}": value}) & (Q(**{f"{field}__{lt}": value}) | Q(**{f"pk__{lt}": pk}))


def older_than(queryset: QuerySet, cursor, *, field: str, size: int) -> tuple[list, int | None] | None:
    """Up to ``size`` rows of ``queryset`` newest first by (``field``, id), after the row
    whose id is ``cursor`` (from the start without one), and the cursor of the rows
    after them (None at the end). None when ``cursor`` is not a row of ``queryset``:
    an API says so rather than starting again."""
    newest_first = queryset.order_by(f"-{field}", "-pk")
    if cursor:
        anchor = queryset.filter(pk=cursor).values(field, "pk").first() if str(cursor).isdigit() else None
        if anchor is None:
            return None
        newest_first = newest_first.filter(_beyond(field, anchor[field], anchor["pk"], older=True))
    rows = list(newest_first[: size + 1])
    return rows[:size], (rows[size - 1].pk if len(rows) > size else None)


def keyset_page(queryset: QuerySet, params, *, field: str, size: int) -> KeysetPage:
    """One page of ``queryset`` newest first by (``field``, id), from the ``older`` or
    ``newer`` cursor in ``params`` (request.GET); the first page without either."""
    cursor = params.get("older") or params.get("newer") or ""
    anchor = queryset.filter(pk=cursor).values(field, "pk").first() if cursor.isdigit() else None
    newest_first = queryset.order_by(f"-{field}", "-pk")
    if anchor is None:
        rows = list(newest_first[: size + 1])
        return KeysetPage(rows[:size], rows[size - 1].pk if len(rows) > size else None, None)
    if params.get("older"):
        rows = list(newest_first.filter(_beyond(field, anchor[field], anchor["pk"], older=True))[: size + 1])
        if rows:
            return KeysetPage(rows[:size], rows[size - 1].pk if len(rows) > size else None, rows[0].pk)
    else:
        oldest_first = queryset.order_by(field, "pk")
        rows = list(oldest_first.filter(_beyond(field, anchor[field], anchor["pk"], older=False))[: size + 1])
        if len(rows) > size:
            page = rows[:size][::-1]
            return KeysetPage(page, page[-1].pk, page[0].pk)
    # Nothing beyond the cursor, or the newest rows reached: the first page.
    return keyset_page(queryset, {}, field=field, size=size)
