from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by a periodic task, so /healthz can tell that workers consume the queue."""

    name = models.CharField(max_length=64, primary_key=True)
    last_seen = models.DateTimeField()

    def __str__(self):
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


class TermsAcceptance(models.Model):
    """A person accepted a version of the terms of use (``settings.TERMS_VERSION``);
    each new version is accepted again at the next sign-in."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    version = models.CharField(max_length=32)
    accepted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "version"], name="terms_accepted_once")]

    def __str__(self):
        return f"{self.user_id} accepted {self.version}"
