"""The `aggregator` command's entry point, kept apart from `cli` so it runs before the imports.

A command imports ~60,000 objects that live as long as the process. With the collector on,
the imports set off collections that walk them again and again (~60 ms of a 0.45 s
start-up); frozen once imported, they are out of its sight for good, and forked workers no
longer copy the pages they share with the parent when a collection touches them
(bench/README.md, rounds 6 and 7). The few cycles the imports leave are frozen with the rest.
"""

import gc
import sys


def main() -> None:
    gc.disable()
    try:
        from . import cli
    except KeyboardInterrupt:  # Ctrl-C this early: nothing was begun, and a traceback reads as a crash
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    finally:
        gc.freeze()
        gc.enable()
    cli.main()
