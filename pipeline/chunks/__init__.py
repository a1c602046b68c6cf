"""A commit in, its chunk shard out: changed items, old/new code, cross-file context."""
