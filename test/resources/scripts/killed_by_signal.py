"""Kill ourselves with the signal named by --signal."""
import argparse
import os
import signal

parser = argparse.ArgumentParser()
parser.add_argument("--signal", default="SIGKILL")
os.kill(os.getpid(), getattr(signal, parser.parse_args().signal))
