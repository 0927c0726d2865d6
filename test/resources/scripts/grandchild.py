"""Start a grandchild in a new session (so it escapes our process group), record its pid, exit."""
import os
import subprocess
import sys
import time

p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "grandchild.pid"), "w") as f:
    f.write(str(p.pid))
print("grandchild: started", p.pid, flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "--wait":
    time.sleep(300)
