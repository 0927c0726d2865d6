"""An async train() and save(): legacy mode runs each coroutine to its end."""
import asyncio
import json
import os


async def train(hyperparameters):
    await asyncio.sleep(0)
    return {"epochs": hyperparameters["epochs"]}


async def save(model, model_dir):
    await asyncio.sleep(0)
    with open(os.path.join(model_dir, "async.json"), "w") as stream:
        json.dump(model, stream)
