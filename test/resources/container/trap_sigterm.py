"""Signal it is ready, then wait; on SIGTERM write a marker into SM_OUTPUT_DATA_DIR and exit 7."""
import os
import signal
import sys
import time

data_dir = os.environ["SM_OUTPUT_DATA_DIR"]


def on_term(signum, frame):
    with open(os.path.join(data_dir, "got-sigterm"), "w") as f:
        f.write("pid %d\n" % os.getpid())
    print("trap_sigterm: got SIGTERM", flush=True)
    sys.exit(7)


signal.signal(signal.SIGTERM, on_term)
with open(os.path.join(data_dir, "ready"), "w") as f:
    f.write("pid %d\n" % os.getpid())
print("trap_sigterm: ready", flush=True)
time.sleep(300)
sys.exit(1)
