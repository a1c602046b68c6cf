"""One exception type for mistakes a user can fix: shown as a paragraph, never a traceback."""


class PipelineError(Exception):
    """A problem with the input or settings, with a message that says what to do."""
