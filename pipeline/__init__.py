"""Rust git history -> StarCoder-style commit examples -> train/val/test tensors."""

__version__ = "0.1.0"
