"""Lesson 10's exercise checks: the reference answers pass, placeholders and wrong answers don't."""

import asyncio

import httpx


def run(check, answer):
    return asyncio.run(check(answer))


def test_rate_transport(project):
    from tutorial_project.course.exercises.lesson10 import check_rate_transport

    reference = httpx.MockTransport(lambda request: httpx.Response(200, json={"rate": "2.5"}))
    assert run(check_rate_transport, reference)
    assert not run(check_rate_transport, ...).solved
    wrong_rate = httpx.MockTransport(lambda request: httpx.Response(200, json={"rate": "2"}))
    verdict = run(check_rate_transport, wrong_rate)
    assert not verdict and "the rate must be 2.5" in str(verdict)
    failing = httpx.MockTransport(lambda request: httpx.Response(500, json={}))
    verdict = run(check_rate_transport, failing)
    assert not verdict and "answered 502" in str(verdict)
    not_a_transport = run(check_rate_transport, lambda request: httpx.Response(200))
    assert not not_a_transport and "httpx.MockTransport" in str(not_a_transport)


def test_read_stream(project):
    from tutorial_project.course.exercises.lesson10 import check_read_stream

    async def reference(response):
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    async def returns_bytes(response):
        return b"".join([chunk async for chunk in response.streaming_content])

    async def first_chunk_only(response):
        async for chunk in response.streaming_content:
            return chunk.decode()

    async def uses_content(response):
        return response.content.decode()

    assert run(check_read_stream, reference)
    assert not run(check_read_stream, ...).solved
    assert "decode" in str(run(check_read_stream, returns_bytes))
    assert "collect every chunk" in str(run(check_read_stream, first_chunk_only))
    verdict = run(check_read_stream, uses_content)
    assert not verdict and "streaming_content" in str(verdict)
