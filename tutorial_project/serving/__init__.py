"""Serving the project for real: the views a load test hits (lesson 08)."""
