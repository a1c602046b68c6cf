"""Settings in, a built dataset out: task actions, workers, the run session, progress."""
