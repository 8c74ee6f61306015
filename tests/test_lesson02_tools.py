"""Lesson 02's tools: the fake upstream and the request bursts measure what they claim."""

import asyncio

import pytest

from tutorial_project.instruments import fake_upstream


def test_fake_upstream_answers_fails_and_counts_calls_in_flight():
    async def scenario():
        with fake_upstream.watch_concurrency() as together:
            await asyncio.gather(*(fake_upstream.fetch_price(f"BK-{i}") for i in range(4)))
        with fake_upstream.watch_concurrency() as in_turn:
            for i in range(3):
                await fake_upstream.fetch_price(f"BK-{i}")
        return together.peak, in_turn.peak

    assert asyncio.run(scenario()) == (4, 1)
    assert fake_upstream.fetch_price_blocking("CF-001") == fake_upstream.quote_for("CF-001")
    with pytest.raises(fake_upstream.UpstreamError):
        fake_upstream.quote_for("DOWN-1")


def test_traced_keeps_the_view_kind_and_bursts_record_threads(project):
    from asgiref.sync import iscoroutinefunction
    from django.http import JsonResponse
    from django.test import AsyncClient

    from tutorial_project import mount, use_middleware
    from tutorial_project.instruments.request_burst import asgi_client, send_burst, traced

    @traced
    async def wait_async(request):
        return JsonResponse(await fake_upstream.fetch_price("CF-001"))

    @traced
    def wait_sync(request):
        return JsonResponse(fake_upstream.fetch_price_blocking("CF-001"))

    assert iscoroutinefunction(wait_async) and not iscoroutinefunction(wait_sync)
    mount("/a/", wait_async)
    mount("/s/", wait_sync)

    async def scenario():
        with use_middleware():
            on_loop = await send_burst(AsyncClient(), "/a/", 5)
            shared = await send_burst(AsyncClient(), "/s/", 3)
            async with asgi_client() as client:
                per_request = await send_burst(client, "/s/", 5)
        return on_loop, shared, per_request

    on_loop, shared, per_request = asyncio.run(scenario())
    assert on_loop.statuses == {200: 5} and len(on_loop.timeline.spans) == 5
    assert on_loop.view_threads == 1
    assert shared.view_threads == 1 and shared.seconds > 0.25  # one thread, in turn
    assert per_request.view_threads == 5 and per_request.extra_threads >= 4


def test_down_skus_fail_after_the_usual_wait_so_siblings_end_together():
    """Exercise 02.1's siblings all end with the failure: the check cannot tell cancelled calls
    from abandoned ones, so the task asks only for the 502 (the docstring says so)."""
    import time

    async def scenario():
        started = time.perf_counter()
        with pytest.raises(fake_upstream.UpstreamError):
            await fake_upstream.fetch_price("DOWN-1")
        return time.perf_counter() - started

    assert asyncio.run(scenario()) >= fake_upstream.DELAY * 0.9
    assert "waits ``DELAY`` like any call, then fails" in fake_upstream.__doc__


def test_sync_cache_calls_on_this_thread_counts_the_loop_thread_only(project):
    import threading

    from django.core.cache import cache

    from tutorial_project.course.exercises.expect import sync_cache_calls_on_this_thread

    backend = type(cache._connections[cache._alias]) if hasattr(cache, "_alias") else type(cache)
    own_get = backend.__dict__.get("get")
    with sync_cache_calls_on_this_thread() as calls:
        cache.set("lesson02-watch", 1)
        assert cache.get("lesson02-watch") == 1
        worker = threading.Thread(target=cache.get, args=("lesson02-watch",))
        worker.start()
        worker.join()
    assert calls == ["set", "get"]
    assert backend.__dict__.get("get") is own_get  # put back as it was


def test_server_cpu_serves_the_three_setups_and_measures_the_server(capsys):
    """Review s32 F2: lesson 02's server-CPU figures come from this script; a short run of it
    serves the three setups behind a real uvicorn and prints the two shares the lesson quotes
    (no bound on their sizes: that is for the learner's machine and `make bench`)."""
    from tutorial_project.instruments import server_cpu

    shares = server_cpu.main(["--requests", "100", "--connections", "5", "--rounds", "1",
                              "--bursts", "1"])
    printed = capsys.readouterr().out
    assert all(shares[setup] > 0 for setup in server_cpu.PATHS), shares
    assert "the thread per request:" in printed and "the sync view:" in printed, printed
    assert "uvicorn with asyncio and h11" in printed and shares["sync burst"] > 0.5, printed
