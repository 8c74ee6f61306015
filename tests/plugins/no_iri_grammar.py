"""Loaded first in `make test` (``-p no_iri_grammar``): saves every test process ~2.5 s of CPU.

nbformat (nbval and the notebook tests use it) imports jsonschema, whose optional "iri"
format checker imports rfc3987_syntax, which compiles an Earley grammar at import time.
nbformat's schemas use no "format" at all, so no check here depends on that checker; with
the module marked missing, jsonschema skips it as it does when the package is not installed.
"""

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # `import rfc3987_syntax` now raises ImportError
