"""Git repository in, commits (with their changed Rust files) and blob bytes out."""
