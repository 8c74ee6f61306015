"""The code that lesson 10's example tests (``lesson_tests/``) test, with its own URLconf.

Small pieces of the kind every Django project has: a view that needs a logged-in user, a view
that waits (once correctly, once by blocking the event loop), a signal sent with ``asend`` and
its receivers, and a background task. The rates view (``tutorial_project.rates.views``) is
routed here too. Tests select this module with ``ROOT_URLCONF`` (``@pytest.mark.urls`` or
``@override_settings``); the project's own URLs do not route the blocking view.
"""

import asyncio
import time

from django.dispatch import Signal
from django.http import JsonResponse
from django.urls import path

from tutorial_project.instruments.tasks_api import task
from tutorial_project.rates.views import product_price

PAUSE_SECONDS = 0.5

# --- a view for logged-in users ---------------------------------------------------------------


async def whoami(request):
    user = await request.auser()  # the async way to read request.user (Django 5.0+)
    if not user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=401)
    return JsonResponse({"username": user.get_username()})


# --- waiting in a view: the right way and the blocking way --------------------------------------


async def pause(request):
    await asyncio.sleep(PAUSE_SECONDS)  # other requests run meanwhile
    return JsonResponse({"paused": PAUSE_SECONDS})


async def pause_blocking(request):
    time.sleep(PAUSE_SECONDS)  # the bug: the whole event loop stops for 0.5 s
    return JsonResponse({"paused": PAUSE_SECONDS})


# --- a signal with async and sync receivers ---------------------------------------------------

order_placed = Signal()  # sent with: await order_placed.asend(sender=..., order_id=...)
outbox = []  # what the receivers "sent", so a test can look


async def email_the_customer(sender, order_id, **kwargs):
    await asyncio.sleep(0)  # stands for an async mail client
    outbox.append(f"email: order {order_id} confirmed")
    return "emailed"


def tell_the_warehouse(sender, order_id, **kwargs):  # a sync receiver: asend runs it in a thread
    outbox.append(f"warehouse: pack order {order_id}")
    return "queued"


order_placed.connect(email_the_customer, dispatch_uid="email_the_customer")
order_placed.connect(tell_the_warehouse, dispatch_uid="tell_the_warehouse")


# --- a background task ------------------------------------------------------------------------


@task()
async def send_receipt(order_id):
    await asyncio.sleep(0)  # stands for an async mail client
    return f"receipt for order {order_id} sent"


urlpatterns = [
    path("price/<str:sku>/", product_price),
    path("whoami/", whoami),
    path("pause/", pause),
    path("pause-blocking/", pause_blocking),
]
