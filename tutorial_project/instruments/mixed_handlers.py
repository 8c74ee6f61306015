"""When does a class-based view with mixed sync and async handlers fail? Lesson 02 runs this
in a throwaway process, against a URLconf that holds such a view:

    python -m tutorial_project.instruments.mixed_handlers

It does what ``manage.py check`` and ``runserver`` do first (the system checks, which import
the URLconf), then what an ASGI server such as uvicorn does (import the ASGI application,
then serve requests).
"""

import asyncio
import sys
import tempfile
from pathlib import Path

URLCONF = '''
from django.http import JsonResponse
from django.urls import path
from django.views import View


class MixedPriceView(View):
    async def get(self, request):
        return JsonResponse({"price": "9.99"})

    def delete(self, request):
        return JsonResponse({"deleted": True})


urlpatterns = [path("prices/", MixedPriceView.as_view())]
'''


async def serve_two_requests(application):
    import httpx

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for attempt in ["first", "second"]:
            try:
                response = await client.get("/prices/")
                print(f"uvicorn, {attempt} request: {response.status_code}")
            except Exception as error:  # what uvicorn logs before it answers 500 itself
                print(f"uvicorn, {attempt} request: {type(error).__name__} escaped Django")


def main():
    from tutorial_project import start

    start(quiet=True)
    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.core.management import call_command

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "mixed_urls.py").write_text(URLCONF)
        sys.path.insert(0, folder)
        settings.ROOT_URLCONF = "mixed_urls"
        try:
            call_command("check")
            print("manage.py check: no error")
        except Exception as error:  # what runserver would stop at, before serving
            print(f"manage.py check / runserver: {type(error).__name__}: {error}")
        application = get_asgi_application()  # what uvicorn imports at startup
        print("uvicorn: the application loaded, the server is up")
        asyncio.run(serve_two_requests(application))


if __name__ == "__main__":
    main()
