from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render

from portal import access
from portal.accounts.models import User

PAGE_SIZE = 25


@access.role_required(User.Role.SUPPORT)
def home(request):
    """Account search: names, emails, roles and states only, never medical content."""
    query = request.GET.get("q", "").strip()[:200]
    users = User.objects.order_by("last_name", "first_name", "pk").only(
        "email", "first_name", "last_name", "role", "is_active"
    )
    if query:
        users = users.filter(Q(email__icontains=query) | Q(last_name__icontains=query) | Q(first_name__icontains=query))
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/home.html", {"page": page, "query": query})
