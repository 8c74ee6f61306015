"""Placing an order: every step happens, or none does.

An order touches three tables: it takes stock from products, takes credit from the customer,
and writes an Order with its OrderLines. A failure half-way (a product runs out, the credit
is short) must leave all of them as they were. Django's transactions are sync-only, so the
work is one sync function inside ``transaction.atomic()``, and async code awaits
``aplace_order``, the same function run by ``sync_to_async`` on Django's sync thread.
"""

from decimal import Decimal

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F

from tutorial_project.catalog.models import Product
from tutorial_project.orders.models import Customer, Order, OrderLine


class OrderError(Exception):
    """The order was refused; nothing was written."""


class OutOfStock(OrderError):
    pass


class InsufficientCredit(OrderError):
    pass


def place_order(customer_email, quantities):
    """Place an order for ``{sku: quantity}`` and return the Order.

    Raises OrderError (OutOfStock, InsufficientCredit) when the order cannot be met, and
    Customer.DoesNotExist or Product.DoesNotExist for an unknown email or sku.

    The steps run in the order a hurried implementation would write them: stock first,
    then credit, then the order rows. ``transaction.atomic()`` is what makes a failure
    in a later step undo the earlier ones.

    Rows are locked in one fixed order, the customer first, then the products by primary
    key, whatever order the cart lists them in. On PostgreSQL two orders that lock the
    same products in opposite orders would each hold a row the other waits for: a
    deadlock, which the database breaks by failing one of them.
    """
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(email=customer_email)
        # One query, sorted by pk: PostgreSQL locks the rows in the order it returns them.
        locked = Product.objects.select_for_update().filter(sku__in=quantities).order_by("pk")
        products = {product.sku: product for product in locked}
        total = Decimal("0.00")
        lines = []
        for sku, quantity in quantities.items():
            if sku not in products:
                raise Product.DoesNotExist(f"no product with sku {sku!r}")
            product = products[sku]
            if quantity < 1 or product.stock < quantity:
                raise OutOfStock(f"{sku}: {quantity} wanted, {product.stock} in stock")
            # F() makes the database do the arithmetic: no lost update from a stale read.
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - quantity)
            lines.append(OrderLine(product=product, quantity=quantity, unit_price=product.price))
            total += product.price * quantity
        if customer.credit < total:
            raise InsufficientCredit(
                f"{customer.name} has {customer.credit}, the order costs {total}"
            )
        Customer.objects.filter(pk=customer.pk).update(credit=F("credit") - total)
        order = Order.objects.create(customer=customer)
        for line in lines:
            line.order = order
        OrderLine.objects.bulk_create(lines)
        return order


# What async code calls: the whole transaction runs on Django's one sync thread.
aplace_order = sync_to_async(place_order)
