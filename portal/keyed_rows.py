"""One model row by its key, in a SELECT written once per database and reused.

Every signed-in request reads three rows before any page does: its session, its user and
its second-factor device. Each is the source of truth (a session ended elsewhere, a
deactivated account, a removed device take effect at the next request), so none is
cached; but the ORM builds each SELECT anew, about a thousand Python calls per lookup,
which made those three reads most of what a signed-in request costs. ``KeyedRow`` builds
the SELECT and the column converters once, then only sends the key.

It reads every concrete field and returns what the ORM's ``.filter(key=value).first()``
would: an instance made by ``Model.from_db`` from values passed through the same
converters, or ``None``; ``all`` returns every row of a key that is not unique (an
indexed foreign key with a few rows per value), in no given order. The query goes
through Django's cursor (query logging, ``execute_wrapper`` and the transaction in
force apply).

The same SELECT may read more, where a page would otherwise ask again: ``related``, the
row of a reverse one-to-one relation (``KeyedRow(User, related=("patient",))``: a LEFT
JOIN; ``user.patient`` then asks nothing, as after ``select_related``), and ``exists``,
whether another model has a row whose field holds this row's key (``exists={"represents":
(Representation, "representative")}`` sets ``represents`` on each row), so that a
question most answers of which are "no" costs no query of its own. ``also_exists`` adds
one later (an app that the row's own does not know of), with conditions of constant
values.
"""

from django.db import connections
from django.db.models.expressions import Col


class KeyedRow:
    def __init__(self, model, key="pk", *, related=(), exists=None):
        self.model, self.key = model, model._meta.get_field(key) if key != "pk" else model._meta.pk
        self.unique = self.key.primary_key or self.key.unique
        # Reverse one-to-one relations read with the row (a LEFT JOIN each), cached on it
        # as the ORM caches them: ``user.patient`` then asks nothing more.
        self.related = tuple(model._meta.get_field(name) for name in related)
        self.exists = {}  # attribute: (field compared with this row's key, conditions)
        self._compiled = {}
        for name, (other, field) in (exists or {}).items():
            self.also_exists(name, other, field)

    def also_exists(self, name, model, field, **conditions):
        """Set ``name`` on each row read: whether a row of ``model`` whose ``field`` holds
        this row's key matches ``conditions`` (lookups of constant values)."""
        self.exists[name] = (model._meta.get_field(field), conditions)
        self._compiled.clear()

    def _compile(self, connection):
        """The SELECT, its parameters before the key, and how to read a row: each model
        read (this one, then each related one) as its fields' names and the slice of the
        row that holds their values, and the converters of those values."""
        quote = connection.ops.quote_name
        table, key = quote(self.model._meta.db_table), quote(self.key.column)
        # Quoted names from the models' own metadata; values are parameters.
        columns, joins, params, parts, converters = [], "", [], [], []
        for model in (self.model, *(rel.related_model for rel in self.related)):
            fields = model._meta.concrete_fields
            for field in fields:
                column = Col(model._meta.db_table, field)
                functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                if functions:
                    converters.append((len(columns), functions, column))
                columns.append(f"{quote(model._meta.db_table)}.{quote(field.column)}")
            names = [field.attname for field in fields]
            parts.append((names, slice(len(columns) - len(fields), len(columns)), names.index(model._meta.pk.attname)))
        for rel in self.related:
            other = quote(rel.related_model._meta.db_table)
            target = f"{table}.{quote(rel.field.target_field.column)}"
            joins += f" LEFT JOIN {other} ON {other}.{quote(rel.field.column)} = {target}"
        for field, conditions in self.exists.values():
            # The ORM's SELECT of the conditions, then this row's key.
            inner = field.model._default_manager.filter(**conditions).order_by().values("pk")
            inner_sql, inner_params = inner.query.get_compiler(connection=connection).as_sql()
            if hasattr(connection.ops, "compose_sql"):
                # PostgreSQL: the constants in the text (quoted by the driver), so that the
                # plan it keeps for the statement may use a partial index on them.
                inner_sql, inner_params = connection.ops.compose_sql(inner_sql, inner_params).replace("%", "%%"), ()
            link = f"{quote(field.model._meta.db_table)}.{quote(field.column)} = {table}.{key}"
            columns.append(f"EXISTS ({inner_sql} {'AND' if conditions else 'WHERE'} {link})")
            params += inner_params
        sql = f"SELECT {', '.join(columns)} FROM {table}{joins} WHERE {table}.{key} = %s"  # noqa: S608
        return sql, params, parts, converters

    def get(self, value, using="default"):
        """The row whose key is ``value``, or ``None``."""
        if not self.unique:
            raise ValueError(f"{self.model.__name__}.{self.key.name} is not unique: it cannot key one row")
        found = self.all(value, using)
        return found[0] if found else None

    def all(self, value, using="default") -> list:
        """Every row whose key is ``value``."""
        connection = connections[using]
        compiled = self._compiled.get(connection.vendor)
        if compiled is None:
            compiled = self._compiled[connection.vendor] = self._compile(connection)
        sql, params, parts, converters = compiled
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, self.key.get_db_prep_value(self.key.to_python(value), connection)])
            rows = cursor.fetchall()
        found, flags = [], len(self.exists)
        for row in rows:
            if converters:
                row = list(row)
                for index, functions, column in converters:
                    for function in functions:
                        row[index] = function(row[index], column, connection)
            (names, columns, _), *joined = parts
            instance = self.model.from_db(using, names, row[columns])
            for rel, (names, columns, pk_at) in zip(self.related, joined, strict=True):
                values = row[columns]
                other = None if values[pk_at] is None else rel.related_model.from_db(using, names, values)
                rel.set_cached_value(instance, other)  # None too: then ``user.patient`` raises, as it would
                if other is not None:
                    rel.field.set_cached_value(other, instance)
            for name, value in zip(self.exists, row[len(row) - flags :], strict=True):
                setattr(instance, name, bool(value))  # SQLite answers 0 or 1
            found.append(instance)
        return found
