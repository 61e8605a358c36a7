"""pil-kmq: a K-means colour-quantizing image codec (.kmq) for Pillow.

Importing the package registers the KMQ format with Pillow, after which
Image.save("x.kmq", colors=16) and Image.open("x.kmq") work as for any
built-in format.
"""

from . import KmqImagePlugin  # noqa: F401  (registers the format)
from .api import SizeReport, compress, reconstruct, size_report
from .reader import read_labels

__all__ = ["compress", "read_labels", "reconstruct", "size_report", "SizeReport"]
__version__ = "0.6.0"
