"""What the 8-device scripts share: the XLA flag, set before JAX is imported, and a runner of named
checks that reports every failure (not just the first) and exits with their number.

Import this module before JAX: XLA's host device count is fixed when JAX starts.
"""

import os
import sys
import traceback

# First in XLA_FLAGS: XLA stops reading flags at a bare token such as "intra_op_parallelism_threads=2",
# which thread-limiting recipes (and warpinit.bench.peers.set_threads) put there.
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8 " + os.environ.get("XLA_FLAGS", "")

failures = []


def check(name):
    """Decorator: run the function now; a failure is printed with its traceback and counted."""

    def decorate(function):
        try:
            function()
        except Exception:  # report every failing check, not just the first
            failures.append(name)
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
        return function

    return decorate


def finish():
    """Print OK or the failed checks' names and exit with the number of failures."""
    print("FAILED: " + ", ".join(failures) if failures else "OK", flush=True)
    sys.exit(len(failures))
