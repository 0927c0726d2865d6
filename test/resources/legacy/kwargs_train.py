"""train(hyperparameters, num_gpus, **kwargs): records what it got, returns None."""
import json
import os


def train(hyperparameters, num_gpus, **kwargs):
    received = dict(kwargs, hyperparameters=hyperparameters, num_gpus=num_gpus)
    with open(os.path.join(kwargs["output_data_dir"], "received.json"), "w") as stream:
        json.dump(received, stream)
