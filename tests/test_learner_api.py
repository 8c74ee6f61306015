"""The learner API: start(), mount()/unmount(), use_middleware() (lesson 00 tests its verdicts)."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def in_fresh_process(code):
    env = dict(os.environ)
    env.pop("TUTORIAL_DATABASE", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def test_start_from_a_plain_script_prints_the_summary():
    lines = in_fresh_process("from tutorial_project import start; start()")
    assert lines[-1].startswith("Django ")
    assert "12 products in 4 categories and 3 customers" in lines[-1]


def test_each_process_gets_its_own_fresh_database_file():
    code = (
        "from tutorial_project import start\n"
        "from tutorial_project.bringup import database_path\n"
        "start(quiet=True)\n"
        "print(database_path())"
    )
    first, second = in_fresh_process(code)[-1], in_fresh_process(code)[-1]
    assert first != second
    assert first.endswith(".sqlite3") and ":memory:" not in first
    # Removed when its process exits.
    assert not Path(first).exists()


PROXIED_LOOPBACK_CALL = """
import http.server, threading, httpx
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/"
def status():
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError as error:
        return type(error).__name__
print("before:", status())
from tutorial_project import start
start(quiet=True)
print("after:", status())
server.shutdown()
"""


@pytest.mark.parametrize("no_proxy", [None, "example.com"])
def test_start_keeps_loopback_calls_off_a_configured_proxy(monkeypatch, no_proxy):
    # A company laptop: every httpx call goes to HTTP_PROXY (here a port nobody listens on).
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    else:
        monkeypatch.delenv("NO_PROXY", raising=False)
    before, after = in_fresh_process(PROXIED_LOOPBACK_CALL)[-2:]
    assert before == "before: ConnectError"
    assert after == "after: 200"


def test_keep_loopback_off_proxies_adds_each_name_once():
    from tutorial_project.bringup import keep_loopback_off_proxies

    environ = {"NO_PROXY": "example.com, localhost"}
    keep_loopback_off_proxies(environ)
    keep_loopback_off_proxies(environ)
    assert environ["NO_PROXY"] == "example.com,localhost,127.0.0.1,::1"
    assert environ["no_proxy"] == "127.0.0.1,localhost,::1"
    everything = {"NO_PROXY": "*"}
    keep_loopback_off_proxies(everything)
    assert everything["NO_PROXY"] == "*"


def test_start_inside_a_running_event_loop_without_allow_async_unsafe():
    code = """
import asyncio, os
assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
from tutorial_project import start

async def main():
    start(quiet=True)
    from tutorial_project.catalog.models import Product
    print(await Product.objects.acount())

asyncio.run(main())
"""
    assert in_fresh_process(code)[-1] == "12"


def test_start_again_resets_the_data_and_unmounts_views(project):
    from django.http import HttpResponse

    from tutorial_project import mount, mounted, start
    from tutorial_project.catalog.demo import add_generated_products
    from tutorial_project.catalog.models import Product

    async def scenario():
        mount("/extra/", lambda request: HttpResponse("x"))
        await asyncio.to_thread(add_generated_products, 5)
        return await Product.objects.acount()

    assert asyncio.run(scenario()) == 17
    start(quiet=True)
    assert mounted() == {}
    assert asyncio.run(Product.objects.acount()) == 12
    # Primary keys start over too, so lessons print the same ids on every run.
    assert asyncio.run(Product.objects.order_by("pk").afirst()).pk == 1


def test_mount_serves_a_cell_view_and_unmount_removes_it(project):
    from django.http import JsonResponse
    from django.test import AsyncClient

    from tutorial_project import mount, mounted, unmount

    async def hello(request, name):
        return JsonResponse({"hello": name})

    async def scenario():
        client = AsyncClient()
        mount("/hello/<str:name>/", hello)
        assert mounted() == {"/hello/<str:name>/": hello}
        ok = await client.get("/hello/ada/")
        unmount("/hello/<str:name>/")
        gone = await client.get("/hello/ada/")
        return ok, gone

    ok, gone = asyncio.run(scenario())
    assert (ok.status_code, ok.json()) == (200, {"hello": "ada"})
    assert gone.status_code == 404
    with pytest.raises(KeyError):
        unmount("/hello/<str:name>/")


def test_mounting_the_same_route_again_replaces_the_view(project):
    from django.http import HttpResponse
    from django.test import AsyncClient

    from tutorial_project import mount

    mount("/v/", lambda request: HttpResponse("one"))
    mount("v/", lambda request: HttpResponse("two"))
    response = asyncio.run(AsyncClient().get("/v/"))
    assert response.content == b"two"


def test_mounted_views_are_served_by_the_real_asgi_handler(project):
    import httpx
    from django.core.handlers.asgi import ASGIHandler
    from django.http import HttpResponse

    from tutorial_project import mount

    mount("/asgi/", lambda request: HttpResponse("through ASGIHandler"))

    async def scenario():
        transport = httpx.ASGITransport(app=ASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/asgi/")

    assert asyncio.run(scenario()).text == "through ASGIHandler"


def test_use_middleware_runs_exactly_the_given_stack(project):
    from django.http import HttpResponse
    from django.test import AsyncClient
    from django.utils.decorators import sync_and_async_middleware

    from tutorial_project import mount, use_middleware

    @sync_and_async_middleware
    def stamp(get_response):
        async def middleware(request):
            response = await get_response(request)
            response["X-Stamp"] = "cell"
            return response

        return middleware

    mount("/plain/", lambda request: HttpResponse("ok"))

    async def scenario():
        with use_middleware(stamp, "django.middleware.common.CommonMiddleware"):
            inside = await AsyncClient().get("/plain/")
        outside = await AsyncClient().get("/plain/")
        return inside, outside

    inside, outside = asyncio.run(scenario())
    assert inside["X-Stamp"] == "cell"
    assert "X-Stamp" not in outside
