from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by a periodic task, so /healthz can tell that workers consume the queue."""

    name = models.CharField(max_length=64, primary_key=True)
    last_seen = models.DateTimeField()

    def __str__(self):
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"
