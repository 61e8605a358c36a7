"""The zstd module: the standard library's `compression.zstd` (Python
3.14+) or, below 3.14, `backports.zstd`, the same module for 3.11-3.13
(a dependency with a python_version marker in pyproject.toml).

Imported lazily, by coding 3 alone, so that a Python whose standard library
was built without zstd still reads and writes the other codings.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType


@cache
def module() -> ModuleType:
    try:
        from compression import zstd
    except ImportError:
        try:
            from backports import zstd
        except ImportError:
            raise ImportError(
                "the zstd coding needs compression.zstd (Python 3.14+) or, below "
                "3.14, the backports.zstd package: pip install backports.zstd"
            ) from None
    return zstd
