"""Each rank joins the job (hvd.init()), then writes its whole environment and its slot as Horovod sees it."""
import json
import os

import horovod.mxnet as hvd

hvd.init()
report = {"environ": dict(os.environ), "rank": hvd.rank(), "size": hvd.size(), "local_rank": hvd.local_rank(),
          "local_size": hvd.local_size()}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "env-rank-{}.json".format(hvd.rank())), "w") as f:
    json.dump(report, f)
print("env_dump: rank {} of {} wrote its environment".format(hvd.rank(), hvd.size()), flush=True)
