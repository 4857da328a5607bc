"""The battery's pytest route as a CI job reads it: which loop, set-up mistakes, junit XML.

``pytest --pyargs mrpc_check.checks`` in a team's CI must never be green for the wrong reason, and
a dashboard must read its results without parsing prose:

* ``--mrpc-loop`` is loaded once, when pytest configures: a wrong path is one line and pytest's
  usage exit (4), naming the pytest option, not one set-up error per check;
* the loop verified is named after collection and in the junit file (a testsuite property, and one
  on every testcase); outside this repository the battery needs ``--mrpc-loop`` (or a ``mrpc_loop``
  fixture), since verifying the project's own reference loop there proves nothing about yours;
* every check's testcase carries ``mrpc_check``, ``mrpc_status``, ``mrpc_figure``, ``mrpc_bug``,
  ``mrpc_fix``, ``mrpc_caused_by`` and ``mrpc_loop`` properties, a stable classname
  (``mrpc_check.checks.test_battery``, wherever pytest runs from), and a warning's message as ``<system-out>``
  (a WARN passes, so no failure element would carry it).

The properties travel as user properties (so pytest-xdist brings them back from workers) but are
written into the XML here rather than through ``record_property``, which warns on every run under
pytest's default junit family (xunit2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CLASSNAME = "mrpc_check.checks.test_battery"
OPTION = "--mrpc-loop"
DEFAULT_INSIDE = "manual"  # the loop verified without --mrpc-loop inside this repository
_LOOP = pytest.StashKey[object]()
UNNAMED = (f"the check battery verifies the loop you name: pass {OPTION} package.module:adapter (or file.py:adapter; "
           f"{OPTION} {DEFAULT_INSIDE} verifies this project's reference loop), or define a mrpc_loop fixture in conftest.py")


def load_loop(config):
    """The adapter ``--mrpc-loop`` names, loaded once (None when not given); a bad spec is a usage error."""
    if _LOOP in config.stash:
        return config.stash[_LOOP]
    spec = config.getoption(OPTION)
    adapter = None
    if spec:
        from mrpc_check.checks.contract import AdapterError, load_adapter

        try:
            adapter = load_adapter(spec, OPTION)
        except AdapterError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[_LOOP] = adapter
    return adapter


def inside_this_repository(config) -> bool:
    """pytest runs from a checkout of mrpc_check itself (the package's source sits under its rootdir)."""
    import mrpc_check

    package = Path(mrpc_check.__file__).resolve().parent
    return package.parent == Path(config.rootpath).resolve()


def loop_label(config) -> str:
    """What the battery verifies, as the header and the junit properties name it."""
    spec = config.getoption(OPTION)
    return spec if spec else f"{DEFAULT_INSIDE} (this repository's reference loop: no {OPTION} given)"


def _conftest_fixture(config) -> bool:
    """A conftest.py the controller loaded defines its own ``mrpc_loop`` fixture (the loop is named there)."""
    return any(getattr(plugin, "__file__", "").endswith("conftest.py") and hasattr(plugin, "mrpc_loop")
               for plugin in config.pluginmanager.get_plugins())


def _uses_plugin_loop(item) -> bool:
    """The test reaches the battery through the plugin's own ``mrpc_loop`` fixture (not a conftest override)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get("mrpc_loop", ()) if info is not None else ()
    return bool(definitions) and definitions[-1].func.__module__ == "mrpc_check.acceptance.plugin"


class BatteryRoute:
    """Registered by the plugin for every session; does nothing unless battery tests are collected."""

    def __init__(self, config) -> None:
        self.config = config
        self.tables: list = []

    def _unnamed(self, items) -> bool:
        """Battery tests selected outside this repository with no loop named."""
        return (not self.config.getoption(OPTION) and any(map(_uses_plugin_loop, items))
                and not inside_this_repository(self.config))

    def pytest_collection_finish(self, session):
        if not hasattr(self.config, "workerinput") and self._unnamed(session.items):
            raise pytest.UsageError(UNNAMED)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        """Under pytest-xdist the workers collect: the controller sees test ids only (a worker's UsageError would be
        an INTERNALERROR). The plugin's own battery module, with no loop named, outside this repository: exit 4."""
        if (not self.config.getoption(OPTION) and any(i.split("::")[0].endswith("test_battery.py") for i in ids)
                and not inside_this_repository(self.config) and not _conftest_fixture(self.config)):
            pytest.exit(UNNAMED, returncode=pytest.ExitCode.USAGE_ERROR)

    def pytest_report_collectionfinish(self, config, start_path, items):
        battery = [item for item in items if "mrpc_battery" in getattr(item, "fixturenames", ())]
        if not battery or self._unnamed(battery):
            return []
        named = loop_label(config) if any(map(_uses_plugin_loop, battery)) else "the mrpc_loop fixture of your conftest.py"
        return [f"mrpc_check battery: verifying {named}"]

    def pytest_sessionstart(self, session):
        xml = _junit(self.config)
        if xml is not None and (self.config.getoption(OPTION) or inside_this_repository(self.config)):
            xml.add_global_property("mrpc_loop", loop_label(self.config))

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the testcase: the classname must be set first
    def pytest_runtest_logreport(self, report):
        properties = dict(report.user_properties)
        if report.when == "call":
            self.tables += [value for key, value in report.user_properties if key == "mrpc_effective_recipe"]
        if "mrpc_check" not in properties and "mrpc_effective_recipe" not in properties:
            return
        xml = _junit(self.config)
        if xml is None:
            return
        reporter = xml.node_reporter(report)
        reporter.add_attribute("classname", CLASSNAME)
        if report.when == "call" and properties.get("mrpc_status") == "warn":
            from xml.etree import ElementTree as ET  # not `import xml...`: it would rebind the local `xml`

            out = ET.Element("system-out")
            out.text = properties.get("mrpc_message", "")
            reporter.append(out)

    def pytest_terminal_summary(self, terminalreporter):
        """The effective recipe of each loop the battery judged, after the tests."""
        if self.tables:
            terminalreporter.section("mrpc_check effective recipe")
            for table in dict.fromkeys(self.tables):
                terminalreporter.write_line(table)


def _junit(config):
    """pytest's junit writer when --junitxml is given (on xdist's controller only), else None."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # a pytest that moved it: plain junit, properties still written by pytest itself
        return None
    return config.stash.get(xml_key, None)


def record_verdict(item, verdict, loop: str) -> None:
    """The verdict as the testcase's junit properties (user properties: xdist carries them back)."""
    item.user_properties += [
        ("mrpc_check", verdict.check), ("mrpc_status", verdict.status), ("mrpc_figure", verdict.figure),
        ("mrpc_bug", verdict.bug), ("mrpc_fix", verdict.fix), ("mrpc_caused_by", verdict.caused_by or ""),
        ("mrpc_loop", loop), ("mrpc_message", verdict.message()),
    ]
