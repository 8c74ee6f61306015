"""Demo data: the same small catalog in every kernel, and a fast generator for bigger ones.

Plain sync ORM code: ``start()`` runs it in a worker thread, never on the event loop.
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tutorial_project.catalog.models import Category, Product, Tag
from tutorial_project.orders.models import Customer

CATEGORIES = [("Books", "books"), ("Coffee", "coffee"), ("Games", "games"), ("Tools", "tools")]
TAGS = ["bestseller", "gift", "new", "sale", "eco", "limited"]
PRODUCTS = [
    # sku, name, category slug, price, stock, tags
    ("BK-001", "Two Scoops of Async", "books", "39.00", 12, ["bestseller", "gift"]),
    ("BK-002", "The Event Loop Field Guide", "books", "24.50", 7, ["new"]),
    ("BK-003", "Threads Considered Harmful", "books", "19.90", 0, ["sale"]),
    ("CF-001", "Espresso Beans 1 kg", "coffee", "21.00", 40, ["bestseller", "eco"]),
    ("CF-002", "Filter Roast 500 g", "coffee", "11.50", 25, ["eco"]),
    ("CF-003", "Decaf 250 g", "coffee", "8.90", 3, ["sale"]),
    ("GM-001", "Await the Dragon", "games", "49.00", 5, ["new", "gift"]),
    ("GM-002", "Race Condition (card game)", "games", "15.00", 18, ["gift"]),
    ("GM-003", "Deadlock Deluxe", "games", "59.00", 2, ["limited"]),
    ("TL-001", "Cable Organizer", "tools", "6.50", 60, []),
    ("TL-002", "Stopwatch", "tools", "12.00", 9, ["gift"]),
    ("TL-003", "Rubber Duck Debugger", "tools", "4.99", 100, ["bestseller"]),
]
CUSTOMERS = [
    ("Ada", "ada@example.com", "100.00"),
    ("Grace", "grace@example.com", "50.00"),
    ("Linus", "linus@example.com", "0.00"),
]
# Fixed, so that every kernel and every rerun shows the same dates.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def load_demo_data():
    """Create the demo catalog and customers. Expects empty tables."""
    categories = {slug: Category.objects.create(name=name, slug=slug) for name, slug in CATEGORIES}
    tags = {name: Tag.objects.create(name=name) for name in TAGS}
    for day, (sku, name, slug, price, stock, tag_names) in enumerate(PRODUCTS):
        product = Product.objects.create(
            sku=sku,
            name=name,
            category=categories[slug],
            price=Decimal(price),
            stock=stock,
            created_at=EPOCH + timedelta(days=day),
        )
        product.tags.set([tags[t] for t in tag_names])
    for name, email, credit in CUSTOMERS:
        Customer.objects.create(name=name, email=email, credit=Decimal(credit))


def add_generated_products(count, seed=0):
    """Add ``count`` generated products (with tags) in a few bulk queries; returns how many.

    Deterministic for a given seed, so lessons can print what they measure over.
    """
    rng = random.Random(seed)
    categories = list(Category.objects.all())
    tags = list(Tag.objects.all())
    start = Product.objects.filter(sku__startswith="GEN-").count()
    products = [
        Product(
            sku=f"GEN-{start + i:06d}",
            name=f"Generated product {start + i}",
            category=rng.choice(categories),
            price=Decimal(rng.randrange(100, 10_000)) / 100,
            stock=rng.randrange(0, 200),
            description="lorem ipsum " * rng.randrange(1, 20),
            created_at=EPOCH + timedelta(minutes=start + i),
        )
        for i in range(count)
    ]
    Product.objects.bulk_create(products, batch_size=500)
    created = Product.objects.filter(sku__in=[p.sku for p in products]).only("id")
    through = Product.tags.through
    links = [
        through(product_id=product.id, tag_id=tag.id)
        for product in created
        for tag in rng.sample(tags, rng.randrange(0, 3))
    ]
    through.objects.bulk_create(links, batch_size=500)
    return count
