"""The course's own tooling, apart from the project and the lessons' instruments.

- ``exercises/``: the exercise checks that the lessons' "Your turn" cells call;
- ``learner_copies``: the learner's copies of the lessons, answers stubbed (``make exercises``);
- ``doctor``: the attendees' preflight (``make doctor``);
- ``book`` and ``book_pages``: the course as a book site with Sphinx (``make html``);
- ``benchmarks/``: measurements kept out of the tests (``make bench``).
"""
