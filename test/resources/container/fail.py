"""Script-mode job that fails: a traceback on stderr, then exit status 3."""
import sys
import traceback


def load_data():
    raise FileNotFoundError("training data not found in the container")


print("fail: starting", flush=True)
try:
    load_data()
except FileNotFoundError:
    traceback.print_exc()
    sys.exit(3)
