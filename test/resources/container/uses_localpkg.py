"""Needs the package that code/requirements.txt installs from code/localpkg."""
import os

import localpkg_marker

with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "localpkg.txt"), "w") as f:
    f.write("%s %s\n" % (localpkg_marker.VALUE, localpkg_marker.__file__))
print("uses_localpkg: VALUE=%s" % localpkg_marker.VALUE, flush=True)
