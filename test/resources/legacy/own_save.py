"""Returns a plain dict and saves it with its own save(model, model_dir)."""
import json
import os


def train(hyperparameters):
    return {"weights": [1, 2, 3], "epochs": hyperparameters["epochs"]}


def save(model, model_dir):
    with open(os.path.join(model_dir, "own.json"), "w") as stream:
        json.dump(model, stream)
