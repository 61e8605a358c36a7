"""Images larger than memory: a .kmq file written from a source of row
blocks and read back as row blocks, in memory bounded by a few bands
whatever the image's size (spec: "Coding 1 and 2" bands are independent).

save_rows writes the same bytes Image.save writes for the same pixels and
options: it runs the encoder's own stages (histogram, k-means, label
lookup, codebook order, band coding, container) over blocks instead of the
whole image. StreamReader reads bands back one at a time.
"""

from .decode import StreamReader
from .encode import save_rows
from .rows import ArrayRows, NpyRows, RowSource, TiffRows

__all__ = ["save_rows", "StreamReader", "RowSource", "ArrayRows", "NpyRows", "TiffRows"]
