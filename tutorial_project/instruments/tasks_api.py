"""Django's Tasks API, imported from wherever this Django has it, so a lesson writes it once.

Django 6.0 added ``django.tasks``. Django 5.2 has none, but the ``django-tasks`` package (the
backport the framework grew from; pinned in requirements.txt for Python < 3.12) offers the
same API: ``@task``, ``enqueue``/``aenqueue``, ``TaskResult``, the immediate and dummy
backends, the task signals. It differs in names, in one export and in where failures are
logged (compared with django-tasks 0.12 and Django 6.1):

============================  ==============================  =================================
                              Django 6.0+                     Django 5.2 + django-tasks
============================  ==============================  =================================
import                        ``django.tasks``                ``django_tasks``
backends                      ``django.tasks.backends.*``     ``django_tasks.backends.*``
INSTALLED_APPS                nothing to add                  ``"django_tasks"``
invalid task                  ``exceptions.InvalidTask``      ``exceptions.InvalidTaskError``
unknown backend               ``InvalidTaskBackend``          ``InvalidTaskBackendError``
the ``Task`` class            ``from django.tasks import``    not exported at the top level
logger                        ``"django.tasks"``              ``"django_tasks"``
a failed task's log           ``"django"`` logger's handlers  the root logger's handlers;
                              (with Django's default          with none (Django's default
                              LOGGING: console when DEBUG,    LOGGING sets none), Python's
                              mail_admins when not)           last resort prints it to stderr
============================  ==============================  =================================
"""

import contextlib
import logging

import django

if django.VERSION >= (6, 0):
    from django.tasks import (
        TaskContext,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.exceptions import InvalidTask
    from django.tasks.signals import task_enqueued, task_finished, task_started

    SOURCE = "django.tasks, built into Django 6.0+"
    BACKENDS = "django.tasks.backends"
    LOGGER = "django.tasks"  # where the backends log each task's start and end
else:
    from importlib.metadata import version

    from django_tasks import (
        TaskContext,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.signals import task_enqueued, task_finished, task_started

    SOURCE = f"django_tasks, the django-tasks {version('django-tasks')} backport"
    BACKENDS = "django_tasks.backends"
    LOGGER = "django_tasks"

@contextlib.contextmanager
def captured_log():
    """Collect the records the task backends log (each task's start and end) into a list.

    Without a handler, Python prints warnings and errors of an unconfigured logger to stderr;
    here they are kept, so a cell can say what was logged in one line.
    """
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


IMMEDIATE = f"{BACKENDS}.immediate.ImmediateBackend"
DUMMY = f"{BACKENDS}.dummy.DummyBackend"

__all__ = [
    "BACKENDS", "DUMMY", "IMMEDIATE", "LOGGER", "SOURCE", "InvalidTask", "TaskContext",
    "TaskResultStatus", "captured_log", "default_task_backend", "task", "task_backends",
    "task_enqueued", "task_finished", "task_started",
]
