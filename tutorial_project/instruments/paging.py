"""One page of the catalog, for async views, on Django 6.x and 5.2 alike.

Django 6.0 added ``AsyncPaginator``/``AsyncPage``; with them every step is awaited. On
Django 5.2 the sync ``Paginator`` does the same job when run in a thread with
``sync_to_async``. Both paths give the same answer.
"""

import json
import os
import re
from pathlib import Path

import django
from asgiref.sync import sync_to_async
from django.core import paginator as django_paginator
from django.http import JsonResponse

from tutorial_project.catalog.models import Product

HAS_ASYNC_PAGINATOR = hasattr(django_paginator, "AsyncPaginator")  # Django 6.0+
PER_PAGE = 5
TAG = "[Django {}.{}]".format(*django.VERSION[:2])


# What each demo printed on Django 6.1, shown on 5.2, where it cannot run. Every run on 6.1
# checks it against what the demo prints there (PAGING_RECORD=1 writes it afresh).
RECORDED = Path(__file__).with_name("paging_on_django_61.json")
RECORDED_ON = (6, 1)


def _recorded():
    return json.loads(RECORDED.read_text()) if RECORDED.exists() else {}


async def run_on_django_6(demo):
    """Run ``await demo(say)`` where Django has AsyncPaginator (6.0+); on 5.2, say why not.

    ``say`` prints a line tagged with this Django's version, because what the demo prints
    exists on 6.x only. On Django 5.2 the demo is not run: a tagged line says so, and the lines
    it printed on Django 6.1 follow, tagged [Django 6.1], from RECORDED. On 6.1 the demo's lines
    must be the recorded ones.
    """
    if not HAS_ASYNC_PAGINATOR:
        print(TAG, f"{demo.__name__}: AsyncPaginator is new in Django 6.0, so it is not run here;")
        print(TAG, "on 5.2 use the sync Paginator inside one sync_to_async call, as above.")
        print(TAG, "What it printed on Django 6.1 (recorded; each 6.1 run checks the record):")
        for line in _recorded()[demo.__name__]:
            print("[Django {}.{}]".format(*RECORDED_ON), line)
        return
    said = []

    def say(*parts):
        said.append(" ".join(map(str, parts)))
        print(TAG, *parts)

    await demo(say)
    said = [re.sub(r"0x[0-9a-fA-F]{6,}", "0x<address>", line) for line in said]
    if django.VERSION[:2] == RECORDED_ON:
        recorded = _recorded()
        if os.environ.get("PAGING_RECORD"):
            RECORDED.write_text(json.dumps({**recorded, demo.__name__: said}, indent=1) + "\n")
        else:
            assert recorded.get(demo.__name__) == said, (recorded.get(demo.__name__), said)


async def catalog_page(number, per_page=PER_PAGE):
    """Page ``number`` (1-based) of the products in SKU order; raises InvalidPage."""
    products = Product.objects.order_by("sku")
    if HAS_ASYNC_PAGINATOR:
        paginator = django_paginator.AsyncPaginator(products, per_page)
        page = await paginator.apage(number)
        return {
            "page": page.number,
            "pages": await paginator.anum_pages(),
            "skus": [product.sku for product in await page.aget_object_list()],
            "has_next": await page.ahas_next(),
        }
    return await sync_to_async(_catalog_page_in_a_thread)(products, number, per_page)


def _catalog_page_in_a_thread(products, number, per_page):
    paginator = django_paginator.Paginator(products, per_page)
    page = paginator.page(number)
    return {
        "page": page.number,
        "pages": paginator.num_pages,
        "skus": [product.sku for product in page],
        "has_next": page.has_next(),
    }


async def catalog_page_view(request):
    """``GET ?page=N``: that page as JSON; 400 if N is not a number, 404 if out of range."""
    try:
        return JsonResponse(await catalog_page(request.GET.get("page", "1")))
    except django_paginator.PageNotAnInteger:
        return JsonResponse({"error": "page must be a whole number"}, status=400)
    except django_paginator.EmptyPage as error:
        return JsonResponse({"error": str(error)}, status=404)
