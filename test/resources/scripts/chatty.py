"""Write many lines to both streams without ever reading: a launcher that blocks would hang us."""
import sys

for i in range(20000):
    print("out line", i)
    print("err line", i, file=sys.stderr)
print("chatty: done", flush=True)
