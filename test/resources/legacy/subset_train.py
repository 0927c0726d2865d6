"""train() naming an exact subset of the offered arguments, one of them with a default."""
import json
import os


def train(hyperparameters, channel_input_dirs, model_dir, output_data_dir, verbose=False):
    received = {"hyperparameters": hyperparameters, "channel_input_dirs": channel_input_dirs,
                "model_dir": model_dir, "output_data_dir": output_data_dir, "verbose": verbose}
    with open(os.path.join(output_data_dir, "received.json"), "w") as stream:
        json.dump(received, stream)
