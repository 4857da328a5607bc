"""The correct loops the battery knows, and their broken twins: one classic bug each.

:mod:`.plain` holds ``PlainLoop`` (a plain PyTorch loop written as a user would, correct), ``accelerated``
the walkthrough's Accelerate loop; ``classic``, ``published`` and the Accelerate module hold the twins, each
changing one method to plant one bug (classic ones and near misses; the bugs of published loops and the extras the
recipe never asked for); :mod:`.catalogue` maps each twin to the check aimed at it (the only root cause the battery
may name) and prints the calibration table. A new twin goes in the module of its family and one ``Entry`` in the
catalogue; ``tests/checks/test_broken_catalogue.py`` holds every one to its check.

Adapter specs name a twin as ``mrpc_check.checks.twins:Name`` (or the older ``mrpc_check.checks.broken:Name``).
"""

from mrpc_check.checks.twins.accelerated import *  # noqa: F401,F403
from mrpc_check.checks.twins.catalogue import CATALOGUE, Entry, calibration_table, plain_loop  # noqa: F401
from mrpc_check.checks.twins.classic import *  # noqa: F401,F403
from mrpc_check.checks.twins.plain import PlainLoop, decay_groups  # noqa: F401
from mrpc_check.checks.twins.published import *  # noqa: F401,F403
