"""Train until stopped; on SIGTERM or SIGINT take --save_seconds to write a checkpoint, then exit 0.

Prints "checkpoint: ready" once its handler is installed, and "checkpoint: got SIG..." on the
signal. --ignore: ignore SIGTERM and SIGINT altogether. --fail_on HOST:CODE with --fail_when PATH:
on HOST, exit with CODE once PATH exists (the test creates it)."""
import argparse
import os
import signal
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--save_seconds", type=float, default=0.0)
parser.add_argument("--ignore", default="")
parser.add_argument("--fail_on", default="")
parser.add_argument("--fail_when", default="")
args = parser.parse_args()

host = os.environ.get("SM_CURRENT_HOST", "")
stop = threading.Event()
got = []


def on_stop(signum, frame):
    got.append(signum)
    print("checkpoint: got {} on {}".format(signal.Signals(signum).name, host), flush=True)
    stop.set()


for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, signal.SIG_IGN if args.ignore else on_stop)
print("checkpoint: ready on {}".format(host), flush=True)

fail_host, _, fail_code = args.fail_on.partition(":")
while not stop.wait(0.05):  # training
    if fail_host == host and os.path.exists(args.fail_when):
        print("checkpoint: failing on purpose on {}".format(host), file=sys.stderr, flush=True)
        sys.exit(int(fail_code))

time.sleep(args.save_seconds)  # writing a large checkpoint
with open(os.path.join(os.environ["SM_MODEL_DIR"], "checkpoint"), "w") as f:
    f.write("saved after {}\n".format(signal.Signals(got[0]).name))
print("checkpoint: saved on {}".format(host), flush=True)
