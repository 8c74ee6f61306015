"""``make bench``: measurements kept out of the timed tests.

Every module here named ``bench_*.py`` defines ``run(notebooks)`` returning rows of
``(what, value)``; ``python -m tutorial_project.course.benchmarks [notebooks...]`` runs them in
name order and prints one table per module. A lesson adds its own module.
"""
