"""benchmark_tap.py — what the benchmark's Python tests share: data/benchmark
on the import path, and TAP output (check, then finish)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'benchmark'))

_n = 0
_failed = 0


def check(desc, ok):
    """One TAP test line: 'ok N - desc' or 'not ok N - desc'."""
    global _n, _failed
    _n += 1
    if not ok:
        _failed += 1
    print(('ok' if ok else 'not ok') + f' {_n} - {desc}', flush=True)


def finish():
    """The plan line; exits 1 if any check failed."""
    print(f'1..{_n}')
    sys.exit(1 if _failed else 0)
