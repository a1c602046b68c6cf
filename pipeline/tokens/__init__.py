"""A chunk shard in, its token shard out: the tokenizer and StarCoder commit-format segments."""
