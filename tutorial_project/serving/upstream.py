"""``await upstream(seconds)``: stands for a call to an upstream API (lesson 08's exercise)."""

import asyncio

observers = []  # async callables awaited with ``seconds`` at each call (exercise 08.2)


async def upstream(seconds):
    """Answer after ``seconds``, as a slow upstream API would."""
    for observe in observers:
        await observe(seconds)
    await asyncio.sleep(seconds)
    return {"upstream": "ok"}
