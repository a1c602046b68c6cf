"""Token shards in temporal order in, dataset/ splits, stats, manifest and report out."""
