"""Prices in other currencies: an async view that asks an exchange-rate upstream.

``client`` talks to the upstream over httpx; ``views`` turns its answers (and failures)
into JSON responses. Tests swap the upstream's transport, never the code.
"""
