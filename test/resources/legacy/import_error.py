"""Fails at import time."""
import json

CONFIG = json.loads("{not json")


def train(**kwargs):
    pass
