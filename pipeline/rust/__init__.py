"""Rust file bytes in, items, references and the symbol index of a tree out (tree-sitter)."""
