from django.core.management.base import BaseCommand

from tutorial_project.catalog.demo import load_demo_data
from tutorial_project.catalog.models import Product


class Command(BaseCommand):
    help = "Load the demo catalog and customers into an empty database."

    def handle(self, *args, **options):
        if Product.objects.exists():
            self.stdout.write("The database already has products; nothing loaded.")
            return
        load_demo_data()
        self.stdout.write(f"Loaded {Product.objects.count()} products.")
