"""Rust git history -> StarCoder-style commit examples -> train/val/test tensors."""

__version__ = "0.1.0"


def __getattr__(name):
    # Imported on first use, so `doit` does not pay for importing torch on every run.
    if name == "load_split":
        from pipeline.loading import load_split
        return load_split
    raise AttributeError(name)
