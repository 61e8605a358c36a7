"""The .kmq file format: container (header, metadata chunks, codebook, CRC)
and the payload codings of the label map. Knows nothing of Pillow."""
