import importlib
import pkgutil
import sys
import time
from pathlib import Path

import tutorial_project.course.benchmarks as package


def main(notebooks):
    only = {arg.removeprefix("--only=") for arg in notebooks if arg.startswith("--only=")}
    notebooks = [Path(n) for n in notebooks if not n.startswith("--")]
    names = sorted(
        m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("bench_")
    )
    for name in names:
        if only and name not in only:
            continue
        module = importlib.import_module(f"{package.__name__}.{name}")
        started = time.perf_counter()
        print(f"\n## {name}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        try:
            rows = module.run(notebooks)
        except Exception as error:  # one broken benchmark should not hide the others
            print(f"  FAILED: {type(error).__name__}: {error}")
            continue
        width = max((len(what) for what, _ in rows), default=0)
        for what, value in rows:
            print(f"  {what:<{width}}  {value}", flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
