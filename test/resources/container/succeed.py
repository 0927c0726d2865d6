"""Script-mode job that succeeds: echo the launcher's facts, save a model file, exit 0."""
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
print("succeed: epochs=%d host=%s hosts=%s" % (args.epochs, os.environ["SM_CURRENT_HOST"], os.environ["SM_HOSTS"]),
      flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write("trained for %d epochs\n" % args.epochs)
