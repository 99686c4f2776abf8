"""Run trine's benchmarks: ``python -m benchmarks [NAME ...] [--repeat N]``.

NAME selects a module (``map`` for ``bench_map.py``) or a case by name;
with no NAME every case runs.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import benchmarks
from benchmarks._harness import Case, run_case


def discover() -> dict[str, list[Case]]:
    found: dict[str, list[Case]] = {}
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda i: i.name):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"benchmarks.{info.name}")
            found[info.name.removeprefix("bench_")] = list(module.CASES)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="module or case names (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant (median)")
    parser.add_argument(
        "--calls", action="store_true", help="also count Python calls per item (slow)"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat!r}")
    modules = discover()
    selected: list[Case] = []
    for module_name, cases in modules.items():
        for case in cases:
            if case.name in args.names or (
                not case.opt_in and (not args.names or module_name in args.names)
            ):
                selected.append(case)
    if args.list:
        for module_name, cases in modules.items():
            for case in cases:
                # Opt-in cases run only when named, so say which they are.
                mark = " (opt-in: run by name)" if case.opt_in else ""
                print(f"{module_name:<10} {case.name:<28} {case.description}{mark}")
        return 0
    if not selected:
        print(f"no benchmark matches {args.names}; try --list", file=sys.stderr)
        return 2
    for case in selected:
        run_case(case, repeat=args.repeat, calls=args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
