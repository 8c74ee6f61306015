"""WSGI entry point, used by the lessons that contrast WSGI with ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial_project.settings")

application = get_wsgi_application()
