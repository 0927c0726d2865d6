"""Write the address of every host in SM_HOSTS (as this container resolves them) to output/data."""
import json
import os
import socket

hosts = json.loads(os.environ["SM_HOSTS"])
addresses = {host: socket.gethostbyname(host) for host in hosts}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "hosts.json"), "w") as f:
    json.dump({"current_host": os.environ["SM_CURRENT_HOST"], "addresses": addresses}, f)
print("resolve_hosts:", addresses, flush=True)
