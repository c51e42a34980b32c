"""`pinbot remind` as one of several OS processes started together, for
tests/flows/test_concurrent_remind.py.

Configured by the environment like `pinbot` itself. Prints "ready" once everything is imported,
then, for each "go" line on stdin, runs the `pinbot remind` verb in this process
(bot.runtime.cli.main: settings, migration check, claim, delivery, the lines it prints, the
exit code) and prints one JSON line {"code": exit code, "said": [the lines it printed]}. Stops
at end of input. Starting the processes once and releasing them together per round keeps
Python's start-up out of the race.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from bot.runtime import cli, process


def main() -> int:
    process.import_modules(process.REMIND_MODULES)  # what the verb imports: before the start
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            code = cli.main(["remind"])
        print(json.dumps({"code": code, "said": said.getvalue().splitlines()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
