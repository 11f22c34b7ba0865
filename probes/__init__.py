"""artlens probes."""
