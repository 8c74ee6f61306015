"""Lesson 08's load tests: generating load, the WSGI server to compare with, the comparison."""
