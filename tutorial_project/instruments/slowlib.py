"""A stand-in for a blocking third-party client (think ``requests.get`` or a vendor SDK).

``lookup_stock(sku)`` waits ``DELAY`` seconds the way a blocking network call does: the
calling thread sleeps, and an event loop running on that thread can do nothing meanwhile.
It touches no database, so it is safe to run on any thread.
"""

import time

DELAY = 0.3  # seconds, like a slow upstream API


def lookup_stock(sku):
    """Return ``{"sku": sku, "in_stock": bool}`` after a blocking wait."""
    time.sleep(DELAY)
    return {"sku": sku, "in_stock": not sku.endswith("3")}
