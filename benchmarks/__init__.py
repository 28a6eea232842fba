"""``make bench``: speed figures measured on synthetic data, never asserted in tests.

Runs against a throwaway database (``test_<name>`` of DATABASE_URL, or a SQLite
file), prints one table per benchmark, and cleans up after itself.
"""
