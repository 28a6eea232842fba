"""What a query reads, from its PostgreSQL plan: the tests of issue 15's goal 3 (no page
reads more as the history grows) add these up over a request's queries."""

# The nodes that read a table: what they examined is what a query costs in rows. The
# nodes above them (joins, sorts, limits, materialisations) pass the same rows on, and
# counting those again made the figure hang on things that do not grow with anything: a
# nested loop over a unique key stops at the first match, so one more row was counted per
# loop whenever an update had moved the matching row of a two-row table after the other
# (the heap's order, which a test's own writes change).
TABLE_SCANS = frozenset({"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan", "Tid Range Scan"})
REMOVED = ("Rows Removed by Filter", "Rows Removed by Index Recheck")


def rows_read(node) -> int:
    """Rows the table scans of a plan examined, over all their loops: those they produced
    and those their filters threw away (a scan that filters the whole history down to a
    page read the whole history). A bitmap index scan is left out: it counts index
    entries, dead ones too (rows of rolled-back tests not yet vacuumed); the bitmap heap
    scan above it counts the live rows it examined."""
    examined = 0
    if node.get("Node Type") in TABLE_SCANS:
        removed = sum(node.get(key, 0) for key in REMOVED)
        examined = (node.get("Actual Rows", 0) + removed) * node.get("Actual Loops", 1)
    return examined + sum(rows_read(child) for child in node.get("Plans", []))
