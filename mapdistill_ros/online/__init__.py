"""The online path in plain Python, shared by the node and replay: synchronization, decoding, the
pipeline from camera sets to map messages, and its timing."""
