#!/usr/bin/python3
"""README.md's configuration reference is exactly what `ingesta help-config` prints,
and every exit code the binary documents in --help is in the README table."""
import os
import re
import subprocess

from ingesta_test import SOURCE_ROOT, check, main


def test():
    readme = open(os.path.join(SOURCE_ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"<!-- BEGIN CONFIG REFERENCE[^\n]*-->\n(.*?)<!-- END CONFIG REFERENCE -->",
                  readme, re.S)
    check(m is not None, "README.md has no config reference markers")
    ref = subprocess.run([os.environ["INGESTA"], "help-config"], capture_output=True, text=True,
                         check=True).stdout
    check(m.group(1) == ref, "README config reference is stale: regenerate it from "
          "`ingesta help-config`")
    for code in range(0, 8):
        check(re.search(rf"^\| {code} \|", readme, re.M), f"exit code {code} not documented")
    print(f"README: {ref.count(chr(10)) - 2} configuration keys in sync")


if __name__ == "__main__":
    main(test)
