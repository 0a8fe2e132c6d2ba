"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class RnnlabError(Exception):
    """A user's mistake or bad input: the message says what is wrong and how to fix it."""
