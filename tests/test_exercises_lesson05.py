"""Lesson 05's checks: the reference answers pass, placeholders wait, wrong answers fail clearly."""

import asyncio

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import JsonResponse
from django.utils.decorators import async_only_middleware, sync_only_middleware

from tutorial_project.course.exercises import lesson05


class LessonHeader:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        response = self.get_response(request)
        response["X-Lesson"] = "05"
        return response

    async def __acall__(self, request):
        response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class UnmarkedLessonHeader(LessonHeader):
    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)


class BlogPostLessonHeader:  # the popular sample: async __call__, no flags
    def __init__(self, get_response):
        self.get_response = get_response

    async def __call__(self, request):
        response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response


@async_only_middleware
def require_api_key(get_response):
    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        from django.core.cache import cache

        if not key or not await cache.aget(f"api-key:{key}"):
            return JsonResponse({"error": "missing or unknown X-API-Key"}, status=401)
        return await get_response(request)

    return middleware


@async_only_middleware
def checks_only_presence(get_response):
    async def middleware(request):
        if "X-API-Key" not in request.headers:
            return JsonResponse({"error": "no key"}, status=401)
        return await get_response(request)

    return middleware


@sync_only_middleware
def sync_api_key(get_response):
    def middleware(request):
        return get_response(request)

    return middleware


def run(check, answer):
    return asyncio.run(check(answer))


def test_05_1_reference_passes(project):
    verdict = run(lesson05.check_lesson_header, LessonHeader)
    assert verdict, str(verdict)


def test_05_1_placeholder_is_not_solved(project):
    verdict = run(lesson05.check_lesson_header, ...)
    assert not verdict and not verdict.solved
    assert "not solved yet" in str(verdict)


def test_05_1_unmarked_class_fails_with_a_hint(project):
    verdict = run(lesson05.check_lesson_header, UnmarkedLessonHeader)
    assert not verdict
    assert "markcoroutinefunction" in str(verdict)


def test_05_1_blog_post_sample_fails_with_a_hint(project):
    verdict = run(lesson05.check_lesson_header, BlogPostLessonHeader)
    assert not verdict
    assert "async_capable" in str(verdict)


def test_05_2_reference_passes(project):
    verdict = run(lesson05.check_require_api_key, require_api_key)
    assert verdict, str(verdict)


def test_05_2_placeholder_is_not_solved(project):
    verdict = run(lesson05.check_require_api_key, ...)
    assert not verdict.solved


def test_05_2_accepting_any_key_fails(project):
    verdict = run(lesson05.check_require_api_key, checks_only_presence)
    assert not verdict
    assert "with a wrong key it answered 200" in str(verdict)


def test_05_2_sync_middleware_fails(project):
    verdict = run(lesson05.check_require_api_key, sync_api_key)
    assert not verdict
    assert "async only" in str(verdict)
