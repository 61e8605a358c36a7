"""`kmq` with one more output format, for the signal tests.

PAUSEPNG (extension .pausepng) writes PNG, except that for an image
PAUSE_WIDTH pixels wide it first writes a few bytes, announces its PID as
a file in $KMQ_PAUSE_DIR and sleeps: a test can then signal a writer that
is known to be half-way through a file, without racing it.

    KMQ_PAUSE_DIR=DIR python tests/pausing_kmq.py decode IN --format pausepng ...

KMQ_NAMED_TEMPORARIES=1 makes save_atomic use named temporary files, the
fallback for systems without O_TMPFILE.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PIL import Image, PngImagePlugin

from pil_kmq import atomic, cli

PAUSE_WIDTH = 7
PAUSE_SECONDS = 60


def _save(im: Image.Image, fp, filename) -> None:
    if im.width == PAUSE_WIDTH:
        fp.write(b"\x89PNG\r\n\x1a\n half a file")
        fp.flush()
        folder = Path(os.environ["KMQ_PAUSE_DIR"])
        announcing = folder / f".{os.getpid()}"
        announcing.write_text(str(os.getpid()))
        announcing.rename(folder / str(os.getpid()))  # appears complete
        time.sleep(PAUSE_SECONDS)
    PngImagePlugin._save(im, fp, filename)


Image.register_save("PAUSEPNG", _save)
Image.register_extension("PAUSEPNG", ".pausepng")
if os.environ.get("KMQ_NAMED_TEMPORARIES"):
    atomic.USE_UNNAMED = False

if __name__ == "__main__":
    raise SystemExit(cli.main(sys.argv[1:]))
