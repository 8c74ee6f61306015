"""Lesson 04: gather of a-methods vs sequential awaits; async for vs aiterator() on 5,000 rows."""

import asyncio
import time

from asgiref.sync import ThreadSensitiveContext, sync_to_async

WAIT = 0.1  # seconds each slow query waits inside SQLite
QUERIES = 4


async def _timed(coroutine_factory):
    started = time.perf_counter()
    await coroutine_factory()
    return time.perf_counter() - started


async def gather_rows():
    from django.db.models import Q

    from tutorial_project.catalog.models import Product
    from tutorial_project.instruments.slow_sql import slow

    skus = ["BK-001", "CF-001", "GM-001", "TL-001"][:QUERIES]

    def query(sku):
        return slow(Product.objects.filter(sku=sku), WAIT).afirst()

    async def sequential():
        for sku in skus:
            await query(sku)

    async def gathered():
        await asyncio.gather(*(query(sku) for sku in skus))

    async def in_own_context(sku):  # what ASGIHandler does for each request
        async with ThreadSensitiveContext():
            await query(sku)

    async def one_context_each():
        await asyncio.gather(*(in_own_context(sku) for sku in skus))

    def real_query(i):
        return Product.objects.filter(Q(stock__gt=i) | Q(name__contains="9")).acount()

    async def real_queries_sequential():
        for i in range(8):
            await real_query(i)

    async def real_queries_gathered():
        await asyncio.gather(*(real_query(i) for i in range(8)))

    seq, gat, own = [await _timed(f) for f in (sequential, gathered, one_context_each)]
    real_seq, real_gat = [await _timed(f) for f in (real_queries_sequential, real_queries_gathered)]
    return [
        (f"{QUERIES} slow queries ({WAIT} s each), awaited one by one, s", f"{seq:.2f}"),
        (f"{QUERIES} slow queries, gathered in one context, s", f"{gat:.2f}  {_overlap(gat)}"),
        (f"{QUERIES} slow queries, one context each (ASGI), s", f"{own:.2f}  {_overlap(own)}"),
        ("8 acount() over 5,012 rows, one by one, s", f"{real_seq:.3f}"),
        ("8 acount() over 5,012 rows, gathered, s", f"{real_gat:.3f}"),
    ]


def _overlap(seconds):
    serial = QUERIES * WAIT
    return "(overlapped)" if seconds < 0.6 * serial else f"(one after another: >= {serial:.1f} s)"


async def streaming_rows():
    from tutorial_project.catalog.models import Product
    from tutorial_project.instruments.orm_streaming import measure

    rows = []
    for label, make_rows in [
        ("async for", lambda: Product.objects.all()),
        ("aiterator(chunk_size=100)", lambda: Product.objects.aiterator(chunk_size=100)),
        ("aiterator() (chunk_size=2000)", lambda: Product.objects.aiterator()),
    ]:
        m = await measure(make_rows)
        rows.append(
            (
                f"{label} over {m.rows} rows",
                f"peak {m.peak_bytes / 2**20:.1f} MiB, "
                f"first row {m.first_row_seconds * 1000:.0f} ms, "
                f"all {m.total_seconds:.2f} s (under tracemalloc)",
            )
        )
    return rows


def run(notebooks):
    from tutorial_project import start

    start(quiet=True)
    from tutorial_project.catalog.demo import add_generated_products  # needs Django set up

    async def main():
        await sync_to_async(add_generated_products)(5000)
        return await gather_rows() + await streaming_rows()

    try:
        return asyncio.run(main())
    finally:
        start(quiet=True)  # back to the demo data for whatever runs next
