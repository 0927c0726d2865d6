"""Wait for SIGTERM; on it write a marker into SM_OUTPUT_DATA_DIR and exit 7."""
import os
import signal
import sys
import time

def on_term(signum, frame):
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "got-sigterm"), "w") as f:
        f.write("yes")
    print("trap_sigterm: got SIGTERM, saving and exiting", flush=True)
    sys.exit(7)

signal.signal(signal.SIGTERM, on_term)
print("trap_sigterm: ready", flush=True)
time.sleep(120)
