"""The correct loops and their broken twins, by their first import path (now :mod:`mrpc_check.checks.twins`).

Kept so that adapter specs written as ``mrpc_check.checks.broken:Name`` (docs, users' CI, 2-process ranks) and
``python -m mrpc_check.checks.broken`` (the calibration table) go on working.
"""

from mrpc_check.checks.twins import *  # noqa: F401,F403
from mrpc_check.checks.twins import CATALOGUE, Entry, PlainLoop, calibration_table, decay_groups, plain_loop  # noqa: F401
from mrpc_check.checks.twins.plain import _groups  # noqa: F401

if __name__ == "__main__":  # python -m mrpc_check.checks.broken: print the calibration table
    print(calibration_table())
