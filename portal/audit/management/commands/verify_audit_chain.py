from django.core.management.base import BaseCommand, CommandError

from portal.audit import services


class Command(BaseCommand):
    help = "Verify the hash chains of the access log and the support trail; name the first broken link of each."

    def handle(self, *args, **options):
        breaks = []
        for model in services.chained_models():
            found = services.verify_chain(model)
            breaks += found
            if not found:
                self.stdout.write(f"{model._meta.db_table}: intact ({model._base_manager.count()} rows)")
        for found in breaks:
            self.stderr.write(f"BROKEN {found}")
        if breaks:
            raise CommandError(f"{len(breaks)} broken chain(s)")
