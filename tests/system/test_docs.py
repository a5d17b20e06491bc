"""vmlaunch(1) documents every option --help lists, and --help lists every option vmlaunch accepts."""
import re
from pathlib import Path

from conftest import ROOT, vmlaunch


def test_every_option_documented():
    help_text = vmlaunch("--help").stdout
    options = set(re.findall(r"--([a-z][a-z-]+)", help_text))
    assert {"dry-run", "explain", "set", "cleanup", "wait", "list", "status", "verbose", "help", "version"} <= options
    page = (ROOT / "launcher" / "man" / "vmlaunch.1").read_text()
    for opt in options:
        assert "\\-\\-" + opt.replace("-", "\\-") in page, f"vmlaunch.1 does not document --{opt}"
    # every option getopt accepts (main.c's longopts table) is in --help
    source = (ROOT / "launcher" / "main.c").read_text()
    table = source[source.index("longopts[] = {"):]
    table = table[:table.index("};")]
    accepted = set(re.findall(r'\{ "([a-z-]+)",', table))
    assert accepted and accepted <= options, accepted - options
