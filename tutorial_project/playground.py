"""Mount views and middleware defined in notebook cells into the running project.

``mount("/hello/", view)`` makes ``await AsyncClient().get("/hello/")`` reach ``view``,
through the project's real URL resolver, for AsyncClient, ASGIHandler and servers alike.
``use_middleware(A, B)`` runs requests through exactly that middleware stack.
Everything else in the lessons is plain Django.
"""

import itertools

from django.urls import clear_url_caches, path

_mounted = {}  # route -> URLPattern
_middleware_names = itertools.count(1)


def mount(route, view=None, *, name=None):
    """Serve ``view`` at ``route`` (``"/hello/"`` or ``"items/<int:pk>/"``).

    Mounting at a route that is already mounted replaces the view. Also works as a
    decorator: ``@mount("/hello/")``. Returns the view.
    """
    if view is None:
        return lambda view: mount(route, view, name=name)
    route = route.lstrip("/")
    if route in _mounted:
        unmount(route)
    pattern = path(route, view, name=name)
    _mounted[route] = pattern
    _root_patterns().append(pattern)
    clear_url_caches()
    return view


def unmount(route):
    """Stop serving the view at ``route``; a KeyError says it was not mounted."""
    route = route.lstrip("/")
    pattern = _mounted.pop(route)
    _root_patterns().remove(pattern)
    clear_url_caches()


def unmount_all():
    for route in list(_mounted):
        unmount(route)


def mounted():
    """The routes mounted from cells, as ``{"/route/": view}``."""
    return {f"/{route}": pattern.callback for route, pattern in _mounted.items()}


def use_middleware(*middleware):
    """Run requests through exactly this middleware stack, outermost first.

    Items are middleware factories (classes or functions, even ones defined in a cell)
    or dotted paths such as ``"django.middleware.common.CommonMiddleware"``. Returns
    Django's ``override_settings``, so use it as ``with use_middleware(...):``.
    Each new ``AsyncClient()`` or ``ASGIHandler()`` builds its chain from it.
    """
    from django.test import override_settings  # imported here: django.test is slow to import

    return override_settings(MIDDLEWARE=[_dotted_path(item) for item in middleware])


def _dotted_path(factory):
    if isinstance(factory, str):
        return factory
    # Django imports middleware by dotted path; a cell's class has none, so give it one here.
    attribute = f"cell_middleware_{next(_middleware_names)}_{factory.__name__}"
    globals()[attribute] = factory
    return f"{__name__}.{attribute}"


def _root_patterns():
    from tutorial_project import urls

    return urls.urlpatterns
