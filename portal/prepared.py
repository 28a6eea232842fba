"""A query the ORM builds and compiles once per database and shape, then only sends again
with new values.

Building and compiling a queryset costs about a thousand Python calls (0.5–2 ms on the
bench's machines), ten times what sending the finished SQL and reading its rows cost; a
page runs ten or more such queries, the same ones at every request with other values
(this user, this patient, now). ``prepared`` keeps each query's SQL and its row reader
(the compiler, with its converters and select-related populators), and at the next call
puts the new values in place of the parameters they became.

    @prepared
    def cared_patient(user_id, pk):
        return _patients_cared_for(user_id).filter(pk=pk)

    rows = cared_patient(user.pk, pk)  # a list: what iterating the queryset gives

The builder takes **values** only, positionally: ints, strings, dates, aware datetimes,
each only passed to the ORM (a filter's value), never looked at or computed with. Choices
that change the query's shape (a role, a model, whether a record is one's own) are
keyword arguments: part of the key, passed through as they are. A call with a value of
another type (``None``, a list) runs the builder as it always would.

Mechanically checked, so that a cached query can never answer for another: the first call
of each shape compiles the builder twice, with two different sets of stand-in values; the
SQL text must be the same, and every parameter must either be the same in both or be
exactly one of the stand-ins in each, the same one. Anything else (a value computed with,
inlined, or turned into something else, as ``__startswith`` does) leaves that shape
unprepared: the builder then runs at every call. With ``PREPARED_QUERIES_CHECK`` (the test
suite's settings) every call also builds the query anew and fails unless its SQL and
parameters are exactly what the prepared query sends.
"""

import copy
import datetime
import functools
import weakref

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.query import (
    FlatValuesListIterable,
    NamedValuesListIterable,
    ValuesIterable,
    ValuesListIterable,
)
from django.db.models.utils import create_namedtuple_class

_UTC = datetime.UTC


def _stand_in(kind, side, index):
    """A value of type ``kind`` no query would hold, different per side and index."""
    if kind is int:
        return -(10**15) * (side + 1) - index
    if kind is str:
        return f"\x1fprepared-{side}-{index}\x1f"
    if kind is datetime.datetime:
        return datetime.datetime(1801 + side, 1, 1, 0, 0, 0, index + 1, tzinfo=_UTC)
    if kind is datetime.date:
        return datetime.date(1801 + side, 1, 1) + datetime.timedelta(days=index + 1)
    raise TypeError(kind)


_KINDS = frozenset((int, str, datetime.datetime, datetime.date))
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # the widest integer column's
# The shapes of one query kept at most (a shape per length of a list of ids, say).
MAX_SHAPES = 64


class _Query:
    """The compiled query's ``Query`` as its queryset's iterable sees it, whose
    compiler answers with the kept SQL and this call's parameters."""

    def __init__(self, query, compiler):
        self._query, self._compiler = query, compiler

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        return self._compiler

    def __getattr__(self, name):
        return getattr(self._query, name)


class _Plan:
    def __init__(self, queryset, compiler, sql, slots):
        self.queryset, self.compiler, self.sql, self.slots = queryset, compiler, sql, slots
        # The columns the rows are read from (as ``results_iter`` takes them), and their
        # converters by connection (each thread's own: they are its methods).
        self.columns = [column for column, _sql, _alias in compiler.select[: compiler.col_count]]
        self.converters = weakref.WeakKeyDictionary()
        self.shape = _values_shape(queryset, compiler, self.columns)

    def params(self, values):
        return tuple(values[index] if index is not None else constant for index, constant in self.slots)

    def rows(self, params, using):
        if self.shape is not None:
            return self._values(params, using)
        compiler = copy.copy(self.compiler)
        connection = compiler.connection = connections[using]  # this thread's: the plan's may be another's
        sql = self.sql
        compiler.as_sql = lambda *args, **kwargs: (sql, params)
        columns, converters, look_up = self.columns, self.converters, compiler.get_converters

        def get_converters(expressions):
            # The plan's own columns: their converters, looked up once (about a tenth of a
            # prepared query's cost); any others, as the compiler does.
            if len(expressions) != len(columns) or any(a is not b for a, b in zip(expressions, columns, strict=True)):
                return look_up(expressions)
            found = converters.get(connection)
            if found is None:
                found = converters[connection] = look_up(expressions)
            return found

        compiler.get_converters = get_converters
        # A new queryset with the kept one's settings (never evaluated: no result cache to
        # share); copy.copy would evaluate it (QuerySet.__getstate__).
        queryset = object.__new__(type(self.queryset))
        queryset.__dict__.update(self.queryset.__dict__)
        queryset._query = _Query(self.queryset.query, compiler)
        return list(queryset)

    def _values(self, params, using):
        """The rows of a ``values()`` or ``values_list()`` query, read as its iterable reads
        them (``results_iter``: the selected columns, each through its converters), without
        building a queryset and a compiler at each call."""
        connection = connections[using]  # this thread's: the plan's may be another's
        converters = self.converters.get(connection)
        if converters is None:
            compiler = copy.copy(self.compiler)
            compiler.connection = connection
            converters = self.converters[connection] = compiler.get_converters(self.columns)
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        kind, names, width = self.shape
        if width is not None:  # columns the query selects only to order by them
            rows = [row[:width] for row in rows]
        if converters:
            converters = converters.items()
            rows = [_converted(row, converters, connection) for row in rows]
        if kind is ValuesListIterable:
            return [tuple(row) for row in rows]
        if kind is FlatValuesListIterable:
            return [row[0] for row in rows]
        if kind is NamedValuesListIterable:
            new, named = tuple.__new__, create_namedtuple_class(*names)
            return [new(named, row) for row in rows]
        # ValuesIterable: a value per name (any column beyond them left out, as it does)
        return [dict(zip(names, row, strict=False)) for row in rows]


def _converted(row, converters, connection):
    """``row`` through its columns' converters (``get_converters``'s items: position,
    (functions, expression)), as ``SQLCompiler.apply_converters`` does."""
    row = list(row)
    for position, (functions, expression) in converters:
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row


def _values_shape(queryset, compiler, columns):
    """For a ``values()`` or ``values_list()`` query, what its iterable makes of a row:
    (the iterable, the names of the values, the number of columns to keep when the query
    selects more); None for any other query (model instances are the ORM's to build)."""
    kind, query = queryset._iterable_class, queryset.query
    if kind not in (ValuesIterable, ValuesListIterable, NamedValuesListIterable, FlatValuesListIterable):
        return None
    if compiler.has_composite_fields(columns):  # a composite key's values come back as tuples
        return None
    if kind is ValuesIterable and query.selected:
        names = tuple(query.selected)
    elif kind is NamedValuesListIterable and queryset._fields:
        names = tuple(queryset._fields)
    else:
        names = (*query.extra_select, *query.values_select, *query.annotation_select)
    return kind, names, compiler.col_count if compiler.has_extra_select else None


_UNPREPARED = object()


class prepared:  # a decorator, named as functions are
    def __init__(self, build, *, max_shapes=MAX_SHAPES):
        functools.update_wrapper(self, build)
        self.build, self.max_shapes = build, max_shapes
        self._plans = {}

    def __call__(self, *values, using=DEFAULT_DB_ALIAS, **shape):
        kinds = tuple(type(value) for value in values)
        if not _KINDS.issuperset(kinds) or any(
            type(value) is int and not _INT_MIN <= value <= _INT_MAX for value in values
        ):
            # The ORM's own answer: an id beyond any column's range, say, matches nothing.
            return list(self.build(*values, **shape).using(using))
        key = (using, kinds, *sorted(shape.items()))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= self.max_shapes:  # kept for the shapes met first, not without end
                return list(self.build(*values, **shape).using(using))
            try:
                plan = self._plan(kinds, shape, using)
            except Exception:  # stand-ins the ORM refuses (an id given as text): as built, at every call
                plan = _UNPREPARED
            self._plans[key] = plan
        if plan is _UNPREPARED:
            return list(self.build(*values, **shape).using(using))
        params = plan.params(values)
        if settings.PREPARED_QUERIES_CHECK:
            self._check(plan, values, shape, using, params)
        return plan.rows(params, using)

    def prepared_shapes(self) -> dict:
        """Each shape met so far, and whether its SQL is kept (else it is built at each
        call): what tests look at."""
        return {key: plan is not _UNPREPARED for key, plan in self._plans.items()}

    def _plan(self, kinds, shape, using):
        compiled = []
        for side in (0, 1):
            stand_ins = [_stand_in(kind, side, index) for index, kind in enumerate(kinds)]
            queryset = self.build(*stand_ins, **shape).using(using)
            # Built from the values, and run after the query: a related manager's instance,
            # prefetches (whose querysets would keep the stand-ins).
            if queryset._known_related_objects or queryset._prefetch_related_lookups:
                return _UNPREPARED
            compiler = queryset.query.get_compiler(using)
            try:
                sql, params = compiler.as_sql()
            except EmptyResultSet:
                return _UNPREPARED
            compiled.append((queryset, compiler, sql, tuple(params), stand_ins))
        (queryset, compiler, sql, params, stand_ins), (_, _, other_sql, other_params, other_stand_ins) = compiled
        if not sql or sql != other_sql or len(params) != len(other_params):
            return _UNPREPARED
        slots = []
        for param, other in zip(params, other_params, strict=True):
            index = next((index for index, value in enumerate(stand_ins) if _same(param, value)), None)
            if index is None:
                if not _same(param, other):  # changed with the values, but is none of them
                    return _UNPREPARED
                slots.append((None, param))
            elif _same(other, other_stand_ins[index]):
                slots.append((index, None))
            else:
                return _UNPREPARED
        return _Plan(queryset, compiler, sql, slots)

    def _check(self, plan, values, shape, using, params):
        """The query built anew from these values is the one the plan sends."""
        fresh = self.build(*values, **shape).using(using)
        try:
            sql, fresh_params = fresh.query.get_compiler(using).as_sql()
        except EmptyResultSet:
            sql, fresh_params = "", ()
        if sql != plan.sql or len(fresh_params) != len(params) or not all(map(_same, fresh_params, params)):
            raise AssertionError(
                f"{self.__qualname__}: the prepared query is not the one these values build"
                f"\n  prepared: {plan.sql} {params}\n  built:    {sql} {tuple(fresh_params)}"
            )


def _same(a, b):
    return type(a) is type(b) and a == b
