"""artlens pipeline: sources → WebDataset shards → decode → CLIP → the store's part writer."""
__version__ = "0.1.0"
