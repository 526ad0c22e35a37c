"""The agents library stands alone: importing all of it loads neither Django nor the console."""

from __future__ import annotations

import subprocess
import sys


def test_importing_every_agents_module_loads_no_django_and_no_console():
    script = (
        "import importlib, pkgutil, sys\n"
        "import agents\n"
        "for module in pkgutil.walk_packages(agents.__path__, 'agents.'):\n"
        "    importlib.import_module(module.name)\n"
        "for name in agents.AGENT_NAMES:\n"
        "    agents._agent_class(name)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'crm_console'))\n"
        "print(','.join(leaked))\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, timeout=300)
    assert found.stdout.strip() == ""
