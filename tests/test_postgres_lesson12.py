"""Check 12.8's verdicts, run for real on PostgreSQL: what the check refuses oversells there.

Check 12.8 runs on SQLite, where this project's transactions take turns (BEGIN IMMEDIATE), so
it judges "safe on PostgreSQL" with a probe: another request's take lands between the answer's
first unlocked read of the row and its next statement; it refuses select_for_update(nowait=True)
or (skip_locked=True), and select_for_update() outside atomic(), from the compiled queries, as
SQLite runs them all as a plain SELECT. Here the same kinds of answers run from 20 threads at
once against PostgreSQL (READ COMMITTED, its default), stock 5, one each: the ones the check
refuses oversell or fail, the ones it accepts sell exactly 5.

Not raced here: a lock on other rows than the one written (check 12.8 refuses it). When every
request locks the same other row first, that lock takes turns for them all and this race sells
exactly 5 (seen in CI, where the catalog has other products); it holds off no writer that does
not take the same lock (another view, the admin), and with no other row to lock it oversold.

Runs when DATABASE_URL points at a PostgreSQL server (`sh .ci/postgres-up` prints one);
skipped otherwise. The race runs in a subprocess with the production settings, as
test_postgres.py does.
"""

import json
import threading
import time
from collections import Counter

from postgres_script import needs_postgres, printed_by

PAUSE = 0.05  # after the first read: the window another transaction commits in


# The answers, as a learner writes them (sync halves; the check awaits them with sync_to_async).
def stale_write_after_the_lock(sku, quantity):  # refused by check 12.8
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    with transaction.atomic():
        product = Product.objects.get(sku=sku)
        time.sleep(PAUSE)
        locked = Product.objects.select_for_update().get(sku=sku)
        if locked.stock < quantity:
            raise OutOfStock(sku)
        Product.objects.filter(pk=product.pk).update(stock=product.stock - quantity)
        return product.stock - quantity


def compare_and_set(sku, quantity):  # accepted by check 12.8
    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    while True:
        product = Product.objects.get(sku=sku)
        time.sleep(PAUSE)
        if product.stock < quantity:
            raise OutOfStock(sku)
        if Product.objects.filter(pk=product.pk, stock=product.stock).update(
                stock=product.stock - quantity):
            return product.stock - quantity


def f_take_and_the_stock_constraint(sku, quantity):  # accepted by check 12.8
    from django.db import IntegrityError, transaction
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    try:
        with transaction.atomic():
            Product.objects.filter(sku=sku).update(stock=F("stock") - quantity)
            time.sleep(PAUSE)
            return Product.objects.values_list("stock", flat=True).get(sku=sku)
    except IntegrityError:
        raise OutOfStock(sku) from None


def _locked_take(sku, quantity, **flags):
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    with transaction.atomic():
        product = Product.objects.select_for_update(**flags).get(sku=sku)
        time.sleep(PAUSE)
        if product.stock < quantity:
            raise OutOfStock(sku)
        product.stock -= quantity
        product.save(update_fields=["stock"])
        return product.stock


def skip_locked(sku, quantity):  # refused by check 12.8 (SQLite runs it as a plain SELECT)
    return _locked_take(sku, quantity, skip_locked=True)


def nowait(sku, quantity):  # refused by check 12.8
    return _locked_take(sku, quantity, nowait=True)


def lock_outside_a_transaction(sku, quantity):  # refused by check 12.8
    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    product = Product.objects.select_for_update().get(sku=sku)
    if product.stock < quantity:
        raise OutOfStock(sku)
    product.stock -= quantity
    product.save(update_fields=["stock"])
    return product.stock


def reference(sku, quantity):
    from tutorial_project.capstone.stock import reserve_stock

    return reserve_stock(sku, quantity)


ANSWERS = {answer.__name__: answer for answer in (
    reference, stale_write_after_the_lock, compare_and_set, f_take_and_the_stock_constraint,
    skip_locked, nowait, lock_outside_a_transaction)}


def race(answer, sku, requests=20):
    """Stock 5; ``requests`` threads at once each reserve 1: (outcome counts, stock left)."""
    from django.db import connections

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    Product.objects.filter(sku=sku).update(stock=5)
    outcomes, barrier = [], threading.Barrier(requests)

    def one_request():
        barrier.wait()
        try:
            answer(sku, 1)
            outcomes.append("reserved")
        except OutOfStock:
            outcomes.append("refused")
        except Exception as error:  # noqa: BLE001  (counted: a 500 for the client)
            outcomes.append(type(error).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one_request) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(Counter(outcomes)), Product.objects.get(sku=sku).stock


def main():
    import django

    django.setup()
    from django.utils import timezone

    from tutorial_project.catalog.models import Category, Product

    sku = "PG-RACE-12-8"
    Product.objects.filter(sku=sku).delete()
    category, _ = Category.objects.get_or_create(slug="pg-race-12-8", name="PG race 12.8")
    Product.objects.create(sku=sku, name=sku, price=1, stock=5, category=category,
                           created_at=timezone.now())
    try:
        print(json.dumps({name: race(answer, sku) for name, answer in ANSWERS.items()}))
    finally:
        Product.objects.filter(sku=sku).delete()
        category.delete()


@needs_postgres
def test_what_check_12_8_refuses_oversells_on_postgresql_and_what_it_accepts_does_not():
    results = {name: (outcomes, left) for name, (outcomes, left) in printed_by(__file__).items()}
    right = {"reserved": 5, "refused": 15}
    for name in ("reference", "compare_and_set", "f_take_and_the_stock_constraint"):
        assert results[name] == (right, 0), (name, results[name])
    outcomes, left = results["stale_write_after_the_lock"]
    assert outcomes.get("reserved", 0) > 5 and left > 0, results  # oversold
    # Lock modes that do not wait: a request that finds the row locked gets no product
    # (a 404) or an error (a 500), and stock that was there stays unsold.
    for name, error in (("skip_locked", "DoesNotExist"), ("nowait", "OperationalError")):
        outcomes, left = results[name]
        assert outcomes.get("reserved", 0) < 5 and error in outcomes and left > 0, (name, results)
    assert results["lock_outside_a_transaction"] == ({"TransactionManagementError": 20}, 5), results


if __name__ == "__main__":
    main()
