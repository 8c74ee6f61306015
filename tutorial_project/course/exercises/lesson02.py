"""Checks for lesson 02 · Async views."""

from django.core.exceptions import ImproperlyConfigured
from django.views import View

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.course.exercises.probes import call_view
from tutorial_project.instruments import fake_upstream

SKUS = ["BK-001", "CF-001", "GM-001", "TL-001", "BK-002", "CF-002"]


@exercise("02.1", "An async view that asks the upstream for several prices at once")
async def check_compare_prices(check, compare_prices):
    must_be_async(check, compare_prices, "compare_prices", "request", kind="view")
    # Counted, not timed: how many upstream calls were waiting at once holds on a busy machine.
    with fake_upstream.watch_concurrency() as seen:
        response = await call_view(compare_prices, suffix=f"?skus={','.join(SKUS)}")
    check.that(
        response.status_code == 200,
        "?skus=BK-001,CF-001,... answers 200",
        f"?skus=BK-001,CF-001,... answered {response.status_code}",
        hint="return JsonResponse({'prices': {...}})",
    )
    expected = {sku: fake_upstream.quote_for(sku)["price"] for sku in SKUS}
    body = response.json()
    check.that(
        body.get("prices") == expected,
        "the body is {'prices': {sku: price, ...}} with the upstream's prices",
        f"the body was {body!r}",
        hint="map each sku to the 'price' field of `await fake_upstream.fetch_price(sku)`",
    )
    check.that(
        seen.peak == len(SKUS),
        "the six upstream calls were all waiting at the same time",
        f"at most {seen.peak} of the six upstream calls were waiting at the same time",
        hint="start them all, then wait once: "
        "`await asyncio.gather(*(fake_upstream.fetch_price(s) for s in skus))`",
    )
    response = await call_view(compare_prices)
    check.that(
        response.status_code == 400 and "error" in response.json(),
        "no ?skus= answers 400 with an 'error' message",
        f"no ?skus= answered {response.status_code} {response.content[:80]!r}",
        hint="if the list of skus is empty, return JsonResponse({'error': ...}, status=400)",
    )
    response = await call_view(compare_prices, suffix="?skus=CF-001,DOWN-1")
    check.that(
        response.status_code == 502 and "error" in response.json(),
        "an upstream failure (DOWN-1) answers 502 with an 'error' message",
        f"an upstream failure answered {response.status_code} {response.content[:80]!r}",
        hint="catch fake_upstream.UpstreamError, return JsonResponse({'error': ...}, status=502)",
    )


@exercise("02.2", "A class-based view with async handlers")
async def check_quote_view(check, QuoteView):
    check.that(
        isinstance(QuoteView, type) and issubclass(QuoteView, View),
        "QuoteView is a subclass of django.views.View",
        f"QuoteView is {QuoteView!r}, not a View subclass",
        hint="write `class QuoteView(View):`",
    )
    try:
        view = QuoteView.as_view()
    except ImproperlyConfigured as error:
        check.that(
            False, "", f"as_view() raised ImproperlyConfigured: {error}",
            hint="make every handler (get, post, ...) `async def`",
        )
    check.that(
        QuoteView.view_is_async,
        "QuoteView's handlers are async, so Django awaits them on the event loop",
        "QuoteView's handlers are sync, so Django would run them in a thread",
        hint="define the handler as `async def get(self, request):`",
    )
    response = await call_view(view, suffix="?sku=CF-001")
    check.that(
        response.status_code == 200 and response.json() == fake_upstream.quote_for("CF-001"),
        "GET ?sku=CF-001 answers 200 with the upstream's quote",
        f"GET ?sku=CF-001 answered {response.status_code} {response.content[:80]!r}",
        hint="return JsonResponse(await fake_upstream.fetch_price(sku))",
    )
    response = await call_view(view, suffix="?sku=DOWN-1")
    check.that(
        response.status_code == 502,
        "GET ?sku=DOWN-1 answers 502",
        f"GET ?sku=DOWN-1 answered {response.status_code}",
        hint="catch fake_upstream.UpstreamError and answer 502",
    )
    response = await call_view(view)
    check.that(
        response.status_code == 400,
        "GET without ?sku= answers 400",
        f"GET without ?sku= answered {response.status_code}",
        hint="answer JsonResponse({'error': ...}, status=400) when the sku is missing",
    )
    response = await call_view(view, method="delete", suffix="?sku=CF-001")
    check.that(
        response.status_code == 405,
        "DELETE answers 405 Method Not Allowed: Django handles the missing handler",
        f"DELETE answered {response.status_code}",
        hint="define only `get`; View answers 405 to the other methods by itself",
    )
