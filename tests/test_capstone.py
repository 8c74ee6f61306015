"""Tests for lesson 12's capstone dashboard (tutorial_project/capstone/), async all the way.

Run alone with: ``.venv/py311/bin/python -m pytest -q tests/test_capstone.py``.
"""

# ruff: noqa: E402  (the project is configured before its models are imported)
import asyncio
import json
import warnings

from tutorial_project import mount, start, unmount, use_middleware

start(quiet=True)

from django.core.cache import cache
from django.test import AsyncClient, Client, TestCase

from tutorial_project.capstone.middleware import cache_control_middleware
from tutorial_project.capstone.service import dashboard_events
from tutorial_project.capstone.views import dashboard, dashboard_stream
from tutorial_project.dashboard.clients import (
    default_upstream,
    in_process_client,
    use_client_factory,
)
from tutorial_project.instruments.streaming import events_in
from tutorial_project.instruments.upstream import FakeUpstream


class CapstoneTests(TestCase):
    @classmethod
    def setUpClass(cls):
        start(quiet=True)
        super().setUpClass()
        mount("capstone/", dashboard)
        mount("capstone/stream/", dashboard_stream)

    @classmethod
    def tearDownClass(cls):
        unmount("capstone/")
        unmount("capstone/stream/")
        super().tearDownClass()

    async def get(self, path):
        await cache.aclear()  # every test starts cold
        with use_middleware(cache_control_middleware):
            return await AsyncClient().get(path)

    async def test_complete_answer(self):
        response = await self.get("/capstone/")
        body = response.json()
        self.assertEqual(response.status_code, 200)
        self.assertEqual(body["catalog"], {"products": 12, "in_stock": 11, "categories": 4})
        self.assertEqual(body["weather"]["city"], "Lyon")
        self.assertFalse(body["partial"])
        self.assertEqual(response["Cache-Control"], "max-age=30")

    async def test_one_failed_source_gives_a_partial_answer(self):
        response = await self.get("/capstone/?news=fail")
        body = response.json()
        self.assertEqual(response.status_code, 200)
        self.assertTrue(body["partial"])
        self.assertIsNone(body["news"])
        self.assertEqual(body["errors"]["news"]["error"], "bad_status")
        self.assertEqual(response["Cache-Control"], "no-store")

    async def test_every_source_failed_is_a_502(self):
        response = await self.get("/capstone/?weather=fail&stocks=malformed&news=fail")
        self.assertEqual(response.status_code, 502)
        self.assertEqual(response["Cache-Control"], "no-store")

    async def test_unknown_mode_is_a_400(self):
        response = await self.get("/capstone/?news=explode")
        self.assertEqual(response.status_code, 400)
        self.assertIn("modes", response.json())

    async def test_second_request_is_served_from_the_cache(self):
        await self.get("/capstone/")  # cold: clears the cache, then fills it
        default_upstream.reset()
        with use_middleware(cache_control_middleware):
            response = await AsyncClient().get("/capstone/")  # warm
        self.assertEqual(response.status_code, 200)
        self.assertEqual(sum(default_upstream.calls.values()), 0)

    async def test_concurrent_cold_requests_ask_each_source_once(self):
        await cache.aclear()
        default_upstream.reset()
        with use_middleware(cache_control_middleware):
            responses = await asyncio.gather(*(AsyncClient().get("/capstone/") for _ in range(10)))
        self.assertEqual({response.status_code for response in responses}, {200})
        self.assertEqual(dict(default_upstream.calls), {"/weather": 1, "/stocks": 1, "/news": 1})

    async def test_a_partial_answer_is_shared_but_never_stored(self):
        await cache.aclear()
        default_upstream.reset()
        with use_middleware(cache_control_middleware):
            responses = await asyncio.gather(
                *(AsyncClient().get("/capstone/?news=fail") for _ in range(5)))
        self.assertTrue(all(response.json()["partial"] for response in responses))
        self.assertEqual(default_upstream.calls["/news"], 1)  # the five shared one computation
        self.assertIsNone(await cache.aget("capstone:widgets:weather=ok&stocks=ok&news=fail"))

    async def test_stream_cancels_its_fetches_when_the_client_leaves(self):
        upstream = FakeUpstream({"/weather": (0.01, {}), "/stocks": (0.4, {}), "/news": (0.4, {})})
        async with in_process_client(upstream) as client:
            events = dashboard_events(client)
            await anext(events)
            await events.aclose()  # the client left while the stream waited at a yield
            await asyncio.sleep(0.01)
            self.assertEqual(upstream.in_flight, 0)
            self.assertEqual(sum(upstream.abandoned.values()), 2)

    async def test_stream_cancels_its_fetches_when_its_task_is_cancelled(self):
        # What ASGIHandler does, mostly: it cancels the response's task while the generator
        # waits at an await, so CancelledError arrives there (not GeneratorExit at a yield).
        upstream = FakeUpstream({"/weather": (0.01, {}), "/stocks": (0.4, {}), "/news": (0.4, {})})
        async with in_process_client(upstream) as client:
            events = dashboard_events(client)
            await anext(events)
            reader = asyncio.create_task(anext(events))
            await asyncio.sleep(0.02)
            reader.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await reader
            await asyncio.sleep(0.01)
            self.assertEqual(upstream.in_flight, 0)
            self.assertEqual(sum(upstream.abandoned.values()), 2)

    async def test_stream_sends_each_source_then_done(self):
        response = await self.get("/capstone/stream/")
        self.assertEqual(response["Content-Type"], "text/event-stream")
        text = b"".join([chunk async for chunk in response.streaming_content]).decode()
        events = events_in(text)
        self.assertEqual([name for name, _ in events], ["source"] * 3 + ["done"])
        self.assertEqual(sorted(json.dumps(d["source"]) for _, d in events[:3]),
                         ['"news"', '"stocks"', '"weather"'])

    def test_stream_under_wsgi_reads_with_a_client_of_its_own_and_closes_it(self):
        # Under WSGI, Django reads an async stream in a loop of its own, after the view's loop
        # has gone: a client taken in the view would belong to a dead loop and never close.
        made = []

        def recording_factory():
            made.append(in_process_client())
            return made[-1]

        asyncio.run(use_client_factory(recording_factory))
        try:
            cache.clear()
            with use_middleware(cache_control_middleware), warnings.catch_warnings():
                warnings.filterwarnings("ignore", "StreamingHttpResponse must consume")
                text = b"".join(Client().get("/capstone/stream/")).decode()
        finally:
            asyncio.run(use_client_factory(None))
        self.assertEqual([name for name, _ in events_in(text)], ["source"] * 3 + ["done"])
        self.assertEqual(len(made), 1)
        self.assertTrue(made[0].is_closed)
