"""Dump argv and the SM_* environment as JSON into SM_OUTPUT_DATA_DIR/env.json."""
import json
import os
import sys

data = {"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith("SM_") or k == "PYTHONPATH"},
        "cwd": os.getcwd()}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "env.json"), "w") as f:
    json.dump(data, f)
print("print_env: ok")
