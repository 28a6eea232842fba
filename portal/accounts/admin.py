from django.contrib import admin

from portal.accounts.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Accounts, for superusers (the only ones the admin site lets in)."""

    list_display = ["email", "last_name", "first_name", "role", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    ordering = ["last_name", "first_name", "pk"]
    fields = ["email", "first_name", "last_name", "role", "is_active", "last_login", "date_joined"]
    readonly_fields = ["last_login", "date_joined"]
