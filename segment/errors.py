"""Errors that are the user's to fix.

Anything raised as :class:`SegmentError` is shown on the command line as one
message and exit code 2, never as a traceback.
"""


class SegmentError(Exception):
    """A problem with the user's input: a file, a column, a value or a key.

    The message must say what is wrong and where (file, column, value, rows
    or config key), and what to do about it.
    """


class CodebookError(SegmentError):
    """The codebook is malformed or does not fit the survey file."""


class SurveyDataError(SegmentError):
    """The survey file holds answers the codebook does not allow."""


class ConfigError(SegmentError):
    """The experiment configuration is malformed."""
