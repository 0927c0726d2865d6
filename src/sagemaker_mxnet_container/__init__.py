"""Old import path kept so scripts written for the reference images keep working."""
