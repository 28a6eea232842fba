"""The project's URLs plus the floor view the page benchmarks compare against."""

from django.http import HttpResponse
from django.template import Context, Template
from django.urls import include, path

from portal.accounts.models import User

TINY = Template("<!DOCTYPE html><title>floor</title><p>{{ count }}</p>")


def floor(request):
    """One query and a tiny template: what any view costs at least."""
    return HttpResponse(TINY.render(Context({"count": User.objects.filter(pk=1).count()})))


urlpatterns = [path("bench/floor/", floor), path("", include("portal.urls"))]
