"""User-facing errors: one line, naming the fix, exit code 2 at the CLI."""

import signal
from pathlib import Path
from typing import Optional


def os_reason(exc: OSError) -> str:
    """An OS error in words for a one-line message; a full disk said plainly."""
    import errno

    return "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))


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


class Preempted(MrpcCheckError):
    """The run stopped on SIGTERM/SIGINT at an optimizer step, with a checkpoint written there."""

    def __init__(self, signum: int, steps: int, checkpoint: Optional[Path]):
        self.exit_code = 128 + signum  # 143 for SIGTERM, 130 for SIGINT, as the shell reports a killed job
        super().__init__(f"stopped by {signal.Signals(signum).name} after optimizer step {steps}; checkpoint {checkpoint}: "
                         "rerun the same command with --resume to continue")
