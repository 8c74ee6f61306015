"""Checks for lesson 10 · Testing async code.

10.1 asks for a test, not for code under test: the check runs the learner's test against the
correct price view and against views with realistic bugs, and against a rates client with
one (a test that replaces ``fetch_rate`` instead of the transport never runs the client, so
it misses that bug). A right test passes on the first and fails (by an assertion or any
exception, as under pytest) on each buggy one. It must pass on the correct view again, a
second time and after the buggy runs: a test that fails only through state an earlier run
left (a module-level list it counts, a one-shot iterator) asserts nothing about the view,
whatever it fails on. On the correct view it must not block the loop: a fake upstream that
``time.sleep``s to "be slow" is refused (``MockTransport`` has no timeout; the sleep holds
every request on the loop and still gives no ``ReadTimeout``), and so is one that spins on the
CPU instead (timed step by step, in the thread's own CPU time) or a sync cache call.

The check runs the test in the notebook's loop, where pytest's marks do nothing, so it reads
them, the test's own and its module's ``pytestmark`` (in a notebook, its namespace): a test
that would fail in a file under pytest (no ``asyncio`` mark in strict mode, no test
database, the plain ``django_db`` of the transaction trap, no ``book`` in an empty test
database) is refused before it runs, and so is one that could never fail there (``skip``,
``skipif``, ``xfail``). A ``parametrize``d test runs once per parameter set, as under pytest.
After each run it checks that the test left the rates client as it found it (a fake transport
left in place breaks every later test): its parts by identity, the attributes of its
transport, the transport of each shared client, and what a real request through it answers,
before and after; it puts back what changed.
"""

import asyncio
import inspect
import json
import logging
import sys
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal

import httpx
import pytest
from _pytest.mark.structures import ParameterSet
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.core.management.color import no_style
from django.db import connection, transaction
from django.http import JsonResponse
from django.test import AsyncClient, AsyncRequestFactory, RequestFactory
from pytest_django.fixtures import Settings, validate_django_db

from tutorial_project.course.exercises.attempt import Raised, attempt, fail
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    LoopCPU,
    loop_blocking_calls,
    must_be_async,
    sync_cache_calls_on_this_thread,
)
from tutorial_project.course.exercises.probes import quiet_request_log
from tutorial_project.playground import mount, unmount
from tutorial_project.rates import client
from tutorial_project.rates.views import product_price

# The most CPU one step on the loop may take in the test's runs on the correct view (the
# reference's longest is ~35 ms on a first run in a fresh process, ~1.5 ms after; the least of
# two runs counts): a fake upstream that spins to "be slow" holds the loop as a sleep does.
LOOP_CPU_STALL = 0.05 if sys.platform == "win32" else 0.03  # Windows: 15.6 ms ticks
ROUTE = "exercise-10/price/<str:sku>/"  # the learner's test requests /exercise-10/price/BK-001/
# what a test may ask for, by name or with @pytest.mark.usefixtures (pytest's and pytest-django's,
# and lesson_tests/conftest.py's book and price_view; the check's price_view is the view it swaps)
FIXTURES = {"async_client", "async_rf", "rf", "price_view", "monkeypatch", "book", "db",
            "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
            "settings", "caplog", "anyio_backend"}
# as pytest-django 4.14's _django_db_helper decides (django_db_reset_sequences asks for
# transactional_db; django_db_serialized_rollback asks for the plain db)
TRANSACTIONAL_FIXTURES = {"transactional_db", "live_server", "django_db_reset_sequences"}
DB_FIXTURES = TRANSACTIONAL_FIXTURES | {"db", "django_db_serialized_rollback", "book"}


def _buggy_views():
    async def timeout_is_a_502(request, sku):  # lumps every upstream failure together
        response = await product_price(request, sku)
        if response.status_code == 504:
            return JsonResponse({"error": "rates upstream failed"}, status=502)
        return response

    async def timeout_escapes(request, sku):  # forgot the except: no JSON error at all
        await client.fetch_rate(request.GET.get("currency", "EUR"))
        return await product_price(request, sku)

    async def falls_back_silently(request, sku):  # answers the EUR price as if converted
        response = await product_price(request, sku)
        if response.status_code == 504:
            from tutorial_project.catalog.models import Product

            product = await Product.objects.aget(sku=sku)
            return JsonResponse({"sku": sku, "currency": request.GET.get("currency"),
                                 "price": str(product.price)})
        return response

    async def plain_text_504(request, sku):  # the right status, but no JSON error to show
        from django.http import HttpResponse

        response = await product_price(request, sku)
        if response.status_code == 504:
            message = json.loads(response.content)["error"]  # the same words, not as JSON
            return HttpResponse(message, status=504, content_type="text/plain")
        return response

    async def right_error_wrong_status(request, sku):  # the timeout's own JSON, as a 502
        response = await product_price(request, sku)
        if response.status_code == 504:
            return JsonResponse(json.loads(response.content), status=502)
        return response

    async def empty_json_504(request, sku):  # the right status, a JSON body with no message
        response = await product_price(request, sku)
        if response.status_code == 504:
            return JsonResponse({}, status=504)
        return response

    return {
        "a view that answers 502 for a timeout": (
            timeout_is_a_502, "assert response.status_code == 504, not just 'an error'"),
        "a view that lets the timeout escape (a server answers 500; the test client "
        "raises it)": (
            timeout_escapes, "assert the status code: a 500 is not a 504"),
        "a view that answers 200 with an unconverted price": (
            falls_back_silently, "assert the status code is 504"),
        "a view that answers 504 as plain text": (
            plain_text_504, 'assert the JSON error too: "error" in response.json()'),
        "a view that answers the timeout's JSON error with a 502": (
            right_error_wrong_status,
            "assert response.status_code == 504: the error message alone does not tell a "
            "504 from a 502"),
        "a view that answers 504 with an empty JSON object": (
            empty_json_504, 'assert the JSON has its "error": "error" in response.json()'),
    }


def _buggy_clients():
    """Rates clients with a bug the view cannot see: a test that replaces ``fetch_rate`` itself
    (mock.patch, monkeypatch) instead of the transport never runs them, so it passes on them."""

    async def lumps_timeouts(currency):  # its excepts in the wrong order: a timeout is an
        try:                             # httpx.HTTPError too, so it becomes a 502
            response = await client.shared_client().get(f"/rates/{currency}")
        except httpx.HTTPError as error:
            raise client.UpstreamError(f"{type(error).__name__}: {error}") from error
        except httpx.TimeoutException as error:  # never reached
            raise client.UpstreamTimeout(str(error)) from error
        if response.status_code == 404:
            raise client.UnknownCurrency(currency)
        if response.status_code != 200:
            raise client.UpstreamError(f"the upstream answered {response.status_code}")
        return Decimal(response.json()["rate"])

    return {
        "a rates client that turns the timeout into an upstream error (a 502)": (
            lumps_timeouts,
            "swap the transport, not fetch_rate: client.use_transport(httpx.MockTransport(h)) "
            "with a handler h that raises httpx.ReadTimeout. A replaced fetch_rate skips the "
            "client's own error handling, so a bug there passes your test"),
    }


class _Caplog:
    """What a test uses of pytest's ``caplog``: the log records of the run."""

    def __init__(self):
        self.records = []
        self.handler = logging.Handler(level=logging.NOTSET)
        self.handler.emit = self.records.append

    @contextmanager
    def capturing(self):
        """Records from every logger, django.request's 5xx lines too, and none printed: that
        logger's own handlers (the settings' cell handler) give way to this one meanwhile."""
        root, requests = logging.getLogger(), logging.getLogger("django.request")
        propagate, handlers = requests.propagate, requests.handlers
        root.addHandler(self.handler)
        requests.handlers = [self.handler]
        requests.propagate = False
        try:
            yield
        finally:
            requests.propagate = propagate
            requests.handlers = handlers
            root.removeHandler(self.handler)

    @property
    def messages(self):
        return [record.getMessage() for record in self.records]

    @property
    def text(self):
        return "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records)

    @property
    def record_tuples(self):
        return [(r.name, r.levelno, r.getMessage()) for r in self.records]

    def clear(self):
        self.records.clear()

    def set_level(self, level, logger=None):
        pass  # every record is kept already

    @contextmanager
    def at_level(self, level, logger=None):
        yield


def _all_marks(test):
    """The test's own marks and its module's ``pytestmark`` (a mark or a list), as pytest
    applies both; in a notebook the module is the notebook's namespace."""
    module = getattr(test, "__globals__", {}).get("pytestmark", [])
    module = module if isinstance(module, list | tuple) else [module]
    return [getattr(mark, "mark", mark) for mark in [*getattr(test, "pytestmark", []), *module]]


def _used_fixtures(test):
    """The fixtures a test asks for as parameters (but those it is parametrized over), and
    those its usefixtures marks name."""
    used = {name for mark in _all_marks(test) if mark.name == "usefixtures"
            for name in mark.args}
    return set(inspect.signature(test).parameters) - _parametrized_names(test), used


def _parametrize_marks(test):
    """Each direct parametrize mark as (its argument names, its ParameterSets)."""
    found = []
    for mark in _all_marks(test):
        arguments = dict(zip(("argnames", "argvalues"), mark.args, strict=False)) | mark.kwargs
        if mark.name != "parametrize" or arguments.get("indirect"):
            continue
        names = arguments.get("argnames", ())
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",") if name.strip()]
        found.append((list(names), [ParameterSet.extract_from(value, len(names) == 1)
                                    for value in arguments.get("argvalues", ())]))
    return found


def _parametrized_names(test):
    return {name for names, _ in _parametrize_marks(test) for name in names}


def _parameter_sets(test):
    """The arguments of each test pytest makes from the parametrize marks (their product),
    and the marks pytest.param gave them."""
    combined = [({}, [])]
    for names, sets in _parametrize_marks(test):
        combined = [(arguments | dict(zip(names, one.values, strict=True)), [*marks, *one.marks])
                    for arguments, marks in combined for one in sets]
    return combined


def used_fixtures(test):
    return set().union(*_used_fixtures(test))


def _fixtures_for(test, view):
    asked, used = _used_fixtures(test)
    unknown = (asked | used) - FIXTURES
    return unknown, {
        "async_client": lambda: AsyncClient(),
        "async_rf": lambda: AsyncRequestFactory(),
        "rf": lambda: RequestFactory(),  # an async view takes its WSGIRequest too
        "price_view": lambda: view,
        "monkeypatch": pytest.MonkeyPatch,
        "book": lambda: "BK-001",  # replaced by the product itself in _run
        "db": lambda: None,
        "transactional_db": lambda: None,
        "django_db_reset_sequences": lambda: None,
        "django_db_serialized_rollback": lambda: None,
        "settings": lambda: Settings(_is_pytest_django=True),
        "caplog": _Caplog,
        "anyio_backend": lambda: "asyncio",  # anyio's own default
    }, asked


def _marks(test):
    """By name; the test's own mark wins over its module's, as the nearer one does in pytest."""
    return {mark.name: mark for mark in reversed(_all_marks(test))}


def _check_marks(check, test):
    """Refuse what would fail in a file under lesson_tests/pytest.ini, before running it."""
    marks, asked = _marks(test), set().union(*_used_fixtures(test))
    parametrize = _parametrize_marks(test)
    parametrized = {name for names, _ in parametrize for name in names}
    if parametrized - set(inspect.signature(test).parameters):
        fail(check, f"it is parametrized over {', '.join(sorted(parametrized))}, but does not "
                    "take all of them as parameters: pytest refuses to collect it",
             "name each argument of @pytest.mark.parametrize among the test's parameters")
    if not all(sets for _, sets in parametrize):
        fail(check, "a parametrize mark has no values: pytest skips the test",
             "give @pytest.mark.parametrize at least one value")
    if any(len(one.values) != len(names) for names, sets in parametrize for one in sets):
        fail(check, "a parameter set of its parametrize mark has the wrong number of values: "
                    "pytest refuses to collect it", "give each set one value per name")
    param_marks = [getattr(m, "mark", m) for _, marks in _parameter_sets(test) for m in marks]
    never_fails = sorted({mark.name for mark in [*_all_marks(test), *param_marks]}
                         & {"skip", "skipif", "xfail"})
    if never_fails:
        fail(check, f"it is marked {', '.join(never_fails)}: under pytest it never fails",
             "remove the mark: a skipped test never runs, and an xfail test that fails is "
             "reported as xfailed, and the run still succeeds")
    runner = "anyio" if "anyio" in marks and "asyncio" not in marks else "asyncio"
    check.that(runner in marks, f"it is marked @pytest.mark.{runner}",
               "it has no @pytest.mark.asyncio (on the test or in a module-level pytestmark)",
               hint="pytest-asyncio in strict mode (lesson_tests/pytest.ini) runs only the "
                    "async tests marked @pytest.mark.asyncio (anyio's own pytest plugin, "
                    "installed with httpx, runs those marked @pytest.mark.anyio)")
    transactional = bool(asked & TRANSACTIONAL_FIXTURES)
    if "django_db" in marks:
        try:
            transaction, reset_sequences, *_ = validate_django_db(marks["django_db"])
        except TypeError as error:  # a misspelt argument: pytest errors on it too
            fail(check, f"its django_db mark does not work: {error}",
                 "the django_db mark takes transaction=True (also reset_sequences, databases, "
                 "serialized_rollback, available_apps)")
        transactional = transactional or transaction or reset_sequences  # as pytest-django
    elif not asked & DB_FIXTURES:  # book asks for db itself
        fail(check, "it has no @pytest.mark.django_db: under pytest the view's query is blocked",
             "mark it @pytest.mark.django_db(transaction=True): the view reads the product")
    plain = ("it uses the plain django_db" if "django_db" in marks
             else "it asks for the db fixture (the plain django_db)")
    check.that(transactional, "its database access is transactional (transaction=True)",
               f"{plain}: the transaction trap",
               hint="the view's aget() runs on another thread, outside the test's transaction "
                    "(pytest-django issue 580): use @pytest.mark.django_db(transaction=True)")
    if "book" in asked:
        check.that(True, "it asks for the book fixture (BK-001 exists)", "")
    else:
        check.that(True, "it does not ask for book: it runs on an empty database, as under "
                   "pytest, so it must create its product itself", "")


NO_BOOK_HINT = ("the test database starts empty: take lesson_tests/conftest.py's book fixture "
                "as a parameter (or create the product in your test), or the view answers 404")


def _empty_tables():
    tables = connection.introspection.django_table_names(only_existing=True,
                                                         include_views=False)
    with connection.cursor() as cursor:
        for sql in connection.ops.sql_flush(no_style(), tables):
            cursor.execute(sql)


@asynccontextmanager
async def _rolled_back(empty):
    """Run the test in a transaction rolled back after it, so its writes do not last.

    It is opened on the thread where every ORM a-method of this loop runs (no
    ThreadSensitiveContext is open here), so the view's queries run inside it too. With
    ``empty``, the tables are emptied inside it first: the database of a test without book.
    """
    atomic = transaction.atomic()
    await sync_to_async(atomic.__enter__)()
    try:
        if empty:
            await sync_to_async(_empty_tables)()
        yield
    finally:
        def roll_back():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)

        await sync_to_async(roll_back)()


PROBE_SECONDS = 1.0


async def _probe():
    """What the rates client answers now: one real request through it, as the view makes."""
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            return f"answers {await client.fetch_rate('USD')}"
    except TimeoutError:
        return f"has no answer within {PROBE_SECONDS} s"
    except Exception as error:  # noqa: BLE001 - a leaked fake may raise anything
        return f"raises {type(error).__name__}"


def _client_state():
    """The rates client's parts, by identity: its module globals (but ``_clients``, one
    client per loop), its transport's own attributes (a MockTransport's ``handler``) and the
    transport each live shared client sends through."""
    return {
        "globals": {name: value for name, value in vars(client).items()
                    if not name.startswith("__") and name != "_clients"},
        "transport": dict(getattr(client._transport, "__dict__", {})),
        "clients": {shared: shared._transport for shared in list(client._clients.values())},
    }


def _put_back(before):
    """Restore what changed since ``before``; return the names of the parts that changed."""
    after, changed = _client_state(), []
    now, then = after["globals"], before["globals"]
    for name in sorted(now.keys() | then.keys()):
        if now.get(name, client) is not then.get(name, client):
            changed.append(name)
            if name in then:
                setattr(client, name, then[name])
            else:
                delattr(client, name)
    attributes = vars(client._transport) if hasattr(client._transport, "__dict__") else {}
    for name in sorted(attributes.keys() | before["transport"].keys()):
        if attributes.get(name, client) is not before["transport"].get(name, client):
            changed.append(f"_transport.{name}")
            if name in before["transport"]:
                attributes[name] = before["transport"][name]
            else:
                del attributes[name]
    for shared in list(client._clients.values()):
        if not isinstance(shared._transport, client._CurrentTransport):
            changed.append("shared_client()._transport")
            shared._transport = before["clients"].get(shared, client._CurrentTransport())
    return changed


async def _upstream_as_shipped(check):
    """Before the first run: an upstream an earlier cell left broken is put back first."""
    if (await _probe()).startswith("answers"):
        return
    client._transport = httpx.MockTransport(client.simulated_upstream)
    for shared in list(client._clients.values()):
        shared._transport = client._CurrentTransport()
    check.that((await _probe()).startswith("answers"),
               "the rates client answered again once the check put the simulated upstream "
               "back (an earlier cell had left it replaced)",
               "the rates client fails before your test runs, and the check cannot repair it",
               hint="restart the kernel (Kernel > Restart), then run the notebook again")


async def _run(check, test, view, what, calls=None, fetch_rate=None):
    """Run the test on ``view``, routed at ROUTE; note each call of the view in ``calls``.
    With ``fetch_rate``, the rates client's ``fetch_rate`` is that one for the run."""
    real_fetch_rate = client.fetch_rate
    if fetch_rate is not None:
        client.fetch_rate = fetch_rate
    try:
        for arguments, _ in _parameter_sets(test):  # one run per test pytest would make
            shown = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
            outcome = await _run_on(check, test, view, f"{what} ({shown})" if shown else what,
                                    calls, arguments)
            if isinstance(outcome, Raised):
                return outcome
        return outcome
    finally:
        client.fetch_rate = real_fetch_rate


async def _run_on(check, test, view, what, calls, arguments):
    async def reached(request, *args, **kwargs):
        if calls is not None:
            calls.append(request.path)
        return await view(request, *args, **kwargs)

    mount(ROUTE, reached)
    answered = await _probe()
    before = _client_state()
    try:
        _, makers, asked = _fixtures_for(test, reached)
        kwargs = {name: makers[name]() for name in asked} | arguments
        if "book" in kwargs:
            from tutorial_project.catalog.models import Product

            kwargs["book"] = await Product.objects.aget(sku="BK-001")
        caplog = kwargs.get("caplog")
        try:
            async with _rolled_back(empty="book" not in used_fixtures(test)):
                with caplog.capturing() if caplog else quiet_request_log():
                    return await attempt(check, lambda: test(**kwargs),
                                         f"your test on {what}")
        finally:
            if "monkeypatch" in kwargs:
                kwargs["monkeypatch"].undo()  # as pytest does after each test
            if "settings" in kwargs:
                kwargs["settings"]._finalize()
    finally:
        unmount(ROUTE)
        left = await _probe()  # a real request, before anything is put back
        changed = _put_back(before)
        if left != answered:
            changed.append(f"a request through it now {left}; before your test it {answered}")
        if changed:
            repaired = await _probe() == answered
            fail(check, f"your test left the rates client changed ({', '.join(changed)}): "
                        "every later test would meet its fake upstream"
                        + ("" if repaired else "; the check could not put it back, so "
                           "restart the kernel"),
                 "restore what you swap: `with client.use_transport(...):`, "
                 "monkeypatch.setattr(...) or mock.patch.object(...) undo it for you")


@exercise("10.1", "A test that catches a bug")
async def check_timeout_test(check, test_upstream_timeout):
    unwrapped = inspect.unwrap(test_upstream_timeout)
    if (inspect.isfunction(test_upstream_timeout)
            and not iscoroutinefunction(test_upstream_timeout)
            and iscoroutinefunction(unwrapped)):
        fail(check, "test_upstream_timeout is an async def, but a decorator wrapped it in a "
                    "sync function. @client.use_transport(...) does that: a context manager used "
                    "as a decorator enters and leaves its block around the call that only "
                    "creates the coroutine, before the test body runs",
             "put the swap inside the test: `with client.use_transport(...):` around the "
             "request")
    must_be_async(check, test_upstream_timeout, "test_upstream_timeout", "async_client",
                  hint="define it with `async def test_upstream_timeout(async_client, book):` "
                       "and the marks. A sync test that runs an async body with async_to_sync "
                       "(way out 3) is right in a file too, but the check runs your test in "
                       "this notebook's loop, where async_to_sync refuses to run")
    unknown, _, _ = _fixtures_for(test_upstream_timeout, product_price)
    check.that(not unknown, "it asks only for fixtures the check provides",
               f"it asks for {', '.join(sorted(unknown))}",
               hint="take async_client (or async_rf or rf, and price_view) and book as "
                    "parameters; db, transactional_db, settings, caplog and monkeypatch work "
                    "too, and names you parametrize. A fixture of your own does not: make "
                    "what it makes inside the test")
    _check_marks(check, test_upstream_timeout)
    await _upstream_as_shipped(check)
    with loop_blocking_calls() as blocking, sync_cache_calls_on_this_thread() as cached:
        async with LoopCPU() as loop_cpu:
            outcome = await _run(check, test_upstream_timeout, product_price,
                                 "the correct view")
    if blocking:
        fail(check, f"your test blocks the event loop: it calls {blocking[0]} on the loop's "
                    "thread, and every request and test on that loop waits meanwhile",
             "MockTransport ignores the client's timeout= (its handler's answer is the "
             "answer, however long it takes): raise httpx.ReadTimeout in the handler at once, "
             "and never sleep with time.sleep in async code")
    if cached:
        fail(check, f"your test calls the sync cache.{cached[0]}() on the event loop: with "
                    "Redis or Memcached it waits on the network and holds the loop",
             f"await its a-twin: await cache.a{cached[0]}(...)")
    if isinstance(outcome, Raised):
        fail(check, f"on the correct view it failed: {outcome}",
             _hint_for(outcome.error, "book" in used_fixtures(test_upstream_timeout)))
    check.that(True, "it passes on the correct view", "")
    async with LoopCPU() as again_cpu:  # a first run may build what later runs reuse
        await _passes_again(check, test_upstream_timeout, "a second time")
    held = min(loop_cpu.longest, again_cpu.longest)
    if held >= LOOP_CPU_STALL:
        fail(check, f"your test held the event loop for {held * 1000:.0f} ms of CPU in one "
                    "step, on each run: a fake upstream that spins to be slow blocks every "
                    "request and test on that loop, as a sleep does",
             "MockTransport ignores the client's timeout=: raise httpx.ReadTimeout in the "
             "handler at once, with no waiting of any kind")
    caught = 0
    buggy = [(what, view, None, hint) for what, (view, hint) in _buggy_views().items()]
    buggy += [(what, product_price, fetch_rate, hint)
              for what, (fetch_rate, hint) in _buggy_clients().items()]
    for what, view, fetch_rate, hint in buggy:
        calls = []
        outcome = await _run(check, test_upstream_timeout, view, what, calls, fetch_rate)
        if not isinstance(outcome, Raised) and caught == 0 and not calls:
            fail(check, f"it passes on {what}: it never calls the view the check swaps",
                 "request /exercise-10/price/BK-001/ with async_client (the check routes "
                 "each version there; /price/BK-001/ is the notebook's own, correct view), "
                 "or call the price_view fixture: price_view(request, sku=...)")
        check.that(isinstance(outcome, Raised), f"it fails on {what}",
                   f"it passes on {what}" + (
                       ": does it assert the status, and does its fake upstream raise "
                       "httpx.ReadTimeout (an upstream that answers, even with a 504, has not "
                       "timed out)?" if caught == 0 else ""),
                   hint=hint)
        caught += 1
    await _passes_again(check, test_upstream_timeout, "after the buggy runs")


STATE_HINT = ("a test must pass every time it runs: keep what it counts, collects or consumes "
              "(a list, an iterator, a flag) inside the test, not at module level, where one "
              "run leaves it changed for the next; then assert on the response itself")


async def _passes_again(check, test, when):
    """Run the test on the correct view again: a test that fails the buggy runs only through
    state an earlier run left behind (a module-level list it asserts the length of, a one-shot
    iterator) fails here, although it asserts nothing about the view."""
    outcome = await _run(check, test, product_price, f"the correct view, {when}")
    if isinstance(outcome, Raised):
        error = str(outcome).removesuffix(": ")  # an assert without a message
        fail(check, f"it passes on the correct view once, but fails on it {when}: {error}. "
                    "Its verdicts on the buggy views come from what an earlier run left, "
                    "not from the view", STATE_HINT)
    check.that(True, f"it passes on the correct view {when} too", "")


def _hint_for(error, book=True):
    """What to change when the test fails on the correct view, from the error it raised."""
    if isinstance(error, SynchronousOnlyOperation):
        return ("the sync ORM cannot run in an async test: use its a-methods "
                "(await Product.objects.aget(...), aexists()...)")
    if isinstance(error, RuntimeError) and "AsyncToSync" in str(error):
        return ("the sync test Client (and async_to_sync) cannot run in an async test's loop: "
                "take the async_client fixture and await its calls")
    if isinstance(error, AttributeError) and "json" in str(error):
        return ("a view's own response has no .json() (the test client adds it): "
                "use json.loads(response.content)")
    if not book:
        return NO_BOOK_HINT
    return ("make the upstream time out with client.use_transport(httpx.MockTransport(...)) "
            "whose handler raises httpx.ReadTimeout; the correct view answers 504 with JSON")
