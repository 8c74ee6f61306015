"""Step 8: the capstone's one write, reserving stock from the dashboard (the reference).

The stock is taken by a conditional ``UPDATE``: the database checks the stock and takes it in
one statement, atomic on its own, which no concurrent request can oversell, on PostgreSQL (at
READ COMMITTED, its default, it re-checks the ``WHERE`` on the row's newest version; REPEATABLE
READ and SERIALIZABLE raise a serialization error instead) as on SQLite. That alone could be one
``aupdate()``. The transaction adds that the stock read after it is the stock right after this
take (the row stays locked until the commit). Django's transactions are sync-only (lesson 04):
``atomic()`` belongs to one thread's connection, and each ``a``-method is a call of its own, so
the transaction is one sync function, run by ``sync_to_async`` (``thread_sensitive=True``, the
default): under ``ASGIHandler`` on the request's own thread. A check that needs the row read
first (not one ``UPDATE``) needs ``select_for_update()`` in such a function.
"""

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F

from tutorial_project.catalog.models import Product


class OutOfStock(Exception):  # noqa: N818  (a refusal the caller answers with 409)
    """Fewer items left than asked for; nothing was taken."""


def reserve_stock(sku, quantity):
    """Take ``quantity`` of ``sku`` from the stock; return what is left.

    Raises ``Product.DoesNotExist`` for an unknown SKU and ``OutOfStock`` when fewer are left;
    then nothing changes.
    """
    with transaction.atomic():
        taken = Product.objects.filter(sku=sku, stock__gte=quantity).update(
            stock=F("stock") - quantity)
        left = Product.objects.values_list("stock", flat=True).get(sku=sku)  # or DoesNotExist
        if not taken:
            raise OutOfStock(f"{sku}: {quantity} wanted, {left} left")
        return left


async def reserve(sku, quantity):
    """What async code awaits: the whole transaction on the request's sync thread."""
    return await sync_to_async(reserve_stock)(sku, quantity)
