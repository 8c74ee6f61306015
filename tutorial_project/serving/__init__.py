"""Serving the project for real: the views a load test hits, and the servers that serve them."""
