"""Writing a product: the row and its tags together, or neither."""

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from tutorial_project.catalog.models import Category, Product, Tag


class UnknownReference(Exception):
    """The payload names a category or tags that do not exist; ``errors`` says which."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


class DuplicateSku(Exception):
    pass


def create_product(fields):
    """Create a Product from parse_new_product()'s fields; sync, in one transaction.

    Two writes (the product row, then its tag links): inside atomic(), a failure in the
    second leaves no tag-less product behind.
    """
    fields = dict(fields)
    slug, tag_names = fields.pop("category"), fields.pop("tags")
    with transaction.atomic():
        errors = {}
        category = Category.objects.filter(slug=slug).first()
        if category is None:
            errors["category"] = f"no category with slug {slug!r}"
        tags = list(Tag.objects.filter(name__in=tag_names))
        missing = sorted(set(tag_names) - {tag.name for tag in tags})
        if missing:
            errors["tags"] = f"unknown tags: {', '.join(missing)}"
        if errors:
            raise UnknownReference(errors)
        if Product.objects.filter(sku=fields["sku"]).exists():
            raise DuplicateSku(fields["sku"])
        try:
            product = Product.objects.create(category=category, **fields, created_at=timezone.now())
        except IntegrityError:  # another request created the same sku just now
            raise DuplicateSku(fields["sku"]) from None
        product.tags.set(tags)
        return product


acreate_product = sync_to_async(create_product)
