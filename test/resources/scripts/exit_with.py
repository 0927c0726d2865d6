"""Print a line to each stream, raise or exit with --code."""
import argparse
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--code", type=int, default=0)
args = parser.parse_args()
print("exit_with: starting", flush=True)
if args.code:
    def load_data():
        raise RuntimeError("the data is missing (code {})".format(args.code))
    try:
        load_data()
    except RuntimeError:
        import traceback
        traceback.print_exc()
    sys.exit(args.code)
print("exit_with: done")
