"""What the browser tests share: Debian's Chromium (see system_chromium.py)."""

import pytest
from system_chromium import CHROMIUM


@pytest.fixture(scope="module")
def chromium():
    """Skips (the tests are still collected, so pytest reports them) without Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` "
            "(Debian/Ubuntu; as root), or set CHROMIUM=/path/to/chromium"
        )
    return CHROMIUM
