"""The package's expected errors: each message is one line that says what is wrong and what to do.

Kept apart from ``training/`` so that data loading, benchmarks and demos can raise and report them
without importing accelerate and the training loop.
"""


class UsageError(Exception):
    """Bad input from the user; the message is one line that says what is wrong and how to fix it."""


class TrainingError(Exception):
    """Training cannot go on (e.g. the loss became NaN); the message is one line that says where and what to do."""


class Interrupted(Exception):
    """Training stopped on a signal after saving its state; the exit code is 128 + the signal's number."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum


def first_line(error: BaseException) -> str:
    """The first line of the innermost cause's message (a config validator wraps the ValueError that says why)."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
