"""`python -m pil_kmq` is the `kmq` command."""

from .cli import main

# Guarded: worker processes started by `kmq -j N` may import this module.
if __name__ == "__main__":
    raise SystemExit(main())
