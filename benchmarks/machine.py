"""What every benchmark prints beside its timings: the CPU, since a ratio to
a C library changes between CPUs (the brief's 0.89x here was 1.13-1.28x on
another)."""

from __future__ import annotations

import platform


def cpu_model() -> str:
    """The model name and, since a virtual machine may name only the
    vendor ("AMD EPYC"), its family, model, stepping and clock."""
    fields: dict[str, str] = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    ids = ", ".join(f"{key} {fields[key]}" for key in ("cpu family", "model", "stepping", "cpu MHz") if key in fields)
    return f"{fields.get('model name', platform.machine())} ({ids})"
