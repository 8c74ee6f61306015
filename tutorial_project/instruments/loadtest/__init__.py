"""Lesson 08's load tests: a real load tool in its own process, server usage, the comparison."""
