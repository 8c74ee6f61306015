"""The embedded Django project that the notebooks drive.

The learner API, all of it:

- ``start()`` brings the project up in this kernel (first cell of every lesson);
- ``mount(route, view)`` / ``unmount(route)`` serve a view defined in a cell;
- ``use_middleware(*middleware)`` runs requests through a given middleware stack.

Everything else is plain Django: ``django.test.AsyncClient``, ``override_settings``, the ORM.
"""

from tutorial_project.bringup import start
from tutorial_project.playground import mount, mounted, unmount, use_middleware

__all__ = ["start", "mount", "mounted", "unmount", "use_middleware"]
