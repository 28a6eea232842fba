"""Several short lists in one query: a UNION ALL of querysets each with its own order
and limit (a page's cards, the latest values of each kind)."""

from django.db import connections


def union_all(*querysets, order_by=()) -> list:
    """The rows of every one of ``querysets`` (each ordered by fields it selects, and
    sliced; values or values_list of the same shape, carrying what tells their rows
    apart): in one query where the database takes a limit on each part of a UNION
    (PostgreSQL), ordered by ``order_by`` (in no given order without it), which each
    part's own order must agree with; else (SQLite) one query each, part after part.
    Either way, the rows of one part come in that part's order."""
    first, *rest = querysets
    if not rest:
        return list(first)
    if connections[first.db].features.supports_slicing_ordering_in_compound:
        return list(first.union(*rest, all=True).order_by(*order_by))
    return [row for queryset in querysets for row in queryset]
