"""The one exception type a stage turns into a one-line error message."""


class PipelineError(Exception):
    """Bad input or a failed precondition: the message is shown to the user as one line."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type if it has none), for one-line errors."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
