"""Exercise checks: run the learner's code and print a clear verdict, never a bare traceback.

A lesson's exercise has three cells:

1. the task (markdown), naming what to define, e.g. ``fetch_all``;
2. the answer cell, tagged ``solution`` in the lessons; learner copies replace it
   with ``fetch_all = ...`` (see ``tutorial_project.course.learner_copies``);
3. the check cell: ``await check_fetch_all(fetch_all)``.

Checks live in ``tutorial_project/course/exercises/lessonNN.py`` and are written with ``exercise``:

    @exercise("02.1", "An async view that answers JSON")
    async def check_hello(check, view):
        response = await call_view(view)
        check.that(response.status_code == 200, "it answers 200",
                   f"it answered {response.status_code}", hint="return a JsonResponse")

A check returns a ``Verdict`` (true when every expectation held), so tests can assert on it.
"""

from tutorial_project.course.exercises.core import Check, NotSolved, Verdict, exercise
from tutorial_project.course.exercises.probes import call_view

__all__ = ["Check", "NotSolved", "Verdict", "exercise", "call_view"]
