"""What ``DJANGO_ALLOW_ASYNC_UNSAFE`` lets happen. Lesson 00 runs this in a throwaway process:

    python -m tutorial_project.instruments.async_unsafe

Two coroutines share one event loop, as two requests do in an ASGI server, and both use the
sync ORM on the loop's thread, which Django's guard would refuse. One holds a transaction
open while it waits; the other's query waits for that transaction's lock, on the loop's
thread, so the first can never get on and release it.
"""

import asyncio
import os

from tutorial_project.instruments.heartbeat import Heartbeat

LOCK_WAIT = 1  # seconds SQLite waits for a lock here (the project's settings say 20)


class PaymentDeclined(Exception):
    pass


async def checkout(Product, transaction):
    with transaction.atomic():  # all or nothing...
        Product.objects.filter(sku="CF-001").update(stock=0)  # SQLite's write lock, taken
        await asyncio.sleep(0.2)  # ...while a payment service answers
        raise PaymentDeclined("card declined")  # so the transaction rolls back


async def restock(Product):
    await asyncio.sleep(0.05)  # arrives while the checkout waits
    Product.objects.filter(sku="BK-001").update(stock=99)  # waits for the lock, on the loop


async def race(Product, transaction):
    async with Heartbeat() as heartbeat:
        outcomes = await asyncio.gather(
            checkout(Product, transaction), restock(Product), return_exceptions=True
        )
    for name, outcome in zip(["checkout", "restock"], outcomes, strict=True):
        print(f"{name}: {type(outcome).__name__}: {outcome}")
    print(f"the event loop stood still for the whole lock wait ({LOCK_WAIT} s):",
          heartbeat.longest_gap >= 0.9 * LOCK_WAIT)


def main():
    from tutorial_project import start

    start(quiet=True)
    from django.db import connections, transaction

    from tutorial_project.catalog.models import Product

    connections.settings["default"]["OPTIONS"]["timeout"] = LOCK_WAIT
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # only in this throwaway process
    asyncio.run(race(Product, transaction))
    stock = Product.objects.get(sku="BK-001").stock
    print(f"BK-001 stock now: {stock}; the restock's 99 is lost:", stock != 99)


if __name__ == "__main__":
    main()
