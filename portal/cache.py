"""The cache: Redis, and the database while Redis cannot be reached.

allauth's rate limits live in the cache. Were they to fail with Redis, signing in
would fail too (a 500); were they to be skipped, nothing would slow a flood of
password-reset emails. So during an outage the same keys go to a table in the
database (Django's database cache, table ``carnet_cache``, made by a migration):
limits keep holding across web processes, only their counts restart at the switch.
After a failure Redis is left alone for ``RETRY_AFTER`` seconds, so an outage costs
one connection attempt per process every few seconds, not one per cache call.
"""

import logging
import time

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

FALLBACK = "fallback"
RETRY_AFTER = 10.0


def _failover(name):
    def method(self, *args, **kwargs):
        now = time.monotonic()
        if now >= self._redis_down_until:
            try:
                result = getattr(RedisCache, name)(self, *args, **kwargs)
            except RedisError as error:
                if not self._redis_down_until:
                    logger.warning("cache: Redis unreachable (%s), using the database", type(error).__name__)
                self._redis_down_until = now + RETRY_AFTER
            else:
                if self._redis_down_until:
                    logger.warning("cache: Redis is back")
                    self._redis_down_until = 0.0
                return result
        return getattr(caches[FALLBACK], name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


class FailoverRedisCache(RedisCache):
    """``RedisCache`` that answers from the ``fallback`` cache while Redis is down."""

    _redis_down_until = 0.0

    def check_primary(self) -> None:
        """Raise when Redis itself does not answer (for /healthz)."""
        self._cache.get_client(write=True).ping()


OPERATIONS = ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many", "clear")
for _name in OPERATIONS:
    setattr(FailoverRedisCache, _name, _failover(_name))


def over_limit(key: str, limit: int, *, window: int = 60) -> int | None:
    """Count one event under ``key`` in the current ``window`` (seconds); when the count
    is over ``limit``, the seconds until the window ends, else None. When no cache
    answers at all the event goes through: a limit protects the service, it is not an
    access rule."""
    now = time.time()
    key = f"{key}:{int(now // window)}"
    try:
        cache.add(key, 0, timeout=2 * window)
        count = cache.incr(key)
    except Exception:
        logger.warning("rate limit not checked: cache unreachable")
        return None
    return max(1, int(window - now % window) + 1) if count > limit else None
