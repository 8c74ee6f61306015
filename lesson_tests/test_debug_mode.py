"""Who switches on asyncio's debug mode in a pytest-asyncio test? It fails on purpose.

pytest-asyncio 1.2.0 and later start each test's loop with ``asyncio.Runner(debug=<its
asyncio_debug setting>)``, which is False unless ``--asyncio-debug`` or ``asyncio_debug = true``
asks for it. So ``PYTHONASYNCIODEBUG=1`` and ``python -X dev``, which ``asyncio.run()`` honours,
are switched off again: this test fails under them and passes with ``--asyncio-debug``.
(1.0 and 1.1 have neither option and leave the loop's default: there the variable passes it.
pytest.ini's ``required_plugins = pytest-asyncio>=1.2`` refuses those.)
"""

import asyncio
import os

import pytest


@pytest.mark.asyncio
async def test_the_loop_is_in_debug_mode():
    debug = asyncio.get_running_loop().get_debug()
    assert debug, f"debug mode {debug}, PYTHONASYNCIODEBUG={os.environ.get('PYTHONASYNCIODEBUG')}"
