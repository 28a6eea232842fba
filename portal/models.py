from django.db import models
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone


class QuickLoad(models.Model):
    """A model whose rows read from the database become instances without going through
    ``__init__``: Django's ``from_db`` (the documented hook) passes every value through
    ``__init__``, a ``setattr`` and a descriptor per field and two signals, about thirty
    Python calls a row; a list page builds 25 to 100 of them. Here, when no receiver
    listens to ``pre_init`` or ``post_init`` and the class keeps Django's ``__init__``, the
    values read go straight into the instance's ``__dict__`` by their columns' names, as
    ``__init__`` would have put them (a new instance has no related object cached for a
    foreign key's setter to clear; a column not read, deferred, is left out as it leaves
    it), with the state ``from_db`` gives.
    tests/portal/test_quick_load.py holds the instances equal to Django's."""

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db, field_names, values, *, fetch_mode=None):
        if pre_init.receivers or post_init.receivers or cls.__init__ is not models.Model.__init__:
            return super().from_db(db, field_names, values, fetch_mode=fetch_mode)
        new = cls.__new__(cls)
        state = new._state = ModelState()
        state.adding, state.db = False, db
        if fetch_mode is not None:
            state.fetch_mode = fetch_mode
        new.__dict__.update(zip(field_names, values, strict=True))
        return new


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


class FormSubmission(models.Model):
    """A state-changing form that has been submitted, by its token (``portal.idempotency``):
    a second submit of the same rendered form answers as the first did, acting once."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    token = models.UUIDField()
    redirect_to = models.CharField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "token"], name="one_submission_per_form_token")]

    def __str__(self):
        return f"{self.token} → {self.redirect_to}"


class PendingTask(models.Model):
    """A task kept in the database until it has run (``portal.jobs``): one enqueued on
    commit (the row is written in the transaction, an outbox), or one that could not be
    handed to Celery (broker down). The periodic relay (``portal.tasks.relay_pending_tasks``)
    hands over those never handed over, and those handed over so long ago that the broker
    must have lost them (Redis restarted without its data); the row goes once its task ran."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    handed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.task
