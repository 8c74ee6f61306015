"""The embedded Django project that the notebooks drive.

The learner API, all of it:

- ``start()`` brings the project up in this kernel (first cell of every lesson);
- ``mount(route, view)`` / ``unmount(route)`` serve a view defined in a cell;
- ``use_middleware(*middleware)`` runs requests through a given middleware stack.

Everything else is plain Django: ``django.test.AsyncClient``, ``override_settings``, the ORM.

The tree has three roles:

- this package's top level and its apps (``catalog``, ``orders``, ``dashboard``, ``rates``,
  ``capstone``, ``serving``) are the Django project itself: settings, URLs, ASGI/WSGI entry
  points, models, views, and the bring-up that runs it inside a notebook kernel;
- ``instruments/`` holds what the lessons use to show and measure async behaviour;
- ``course/`` holds the course's own tooling: exercise checks, learner copies, the doctor,
  the static site and the benchmarks.
"""

from tutorial_project.bringup import start
from tutorial_project.playground import mount, mounted, unmount, use_middleware

__all__ = ["start", "mount", "mounted", "unmount", "use_middleware"]
