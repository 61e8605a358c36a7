"""Choosing the codebook and the labels: histogram, k-means, nearest-colour
search, dithering. Works on numpy arrays; knows nothing of the file format."""
