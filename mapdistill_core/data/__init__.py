"""Data: the Sample type, its on-disk format, and the datasets that produce Samples."""
