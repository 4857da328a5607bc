"""User-facing errors: one line, naming the fix, exit code 2 at the CLI."""


class MrpcCheckError(Exception):
    """Bad input or environment: the CLI prints the message on one line and exits 2."""

    exit_code = 2


class ConfigError(MrpcCheckError, ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


class DataError(MrpcCheckError):
    """The MRPC source cannot be found or parsed."""


class ModelError(MrpcCheckError):
    """The checkpoint cannot be resolved or loaded."""


class TrainingError(MrpcCheckError):
    """Training cannot go on (non-finite loss, unusable device)."""
