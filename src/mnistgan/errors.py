"""The one exception type a stage turns into a one-line error message."""


class PipelineError(Exception):
    """Bad input or a failed precondition: the message is shown to the user as one line."""
