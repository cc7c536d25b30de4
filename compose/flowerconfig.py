"""Flower settings for the compose stack (mounted at /etc/flower/flowerconfig.py).

Flower executes this file; every module-level name is one of its options.
Credentials come from the environment (compose/.env), never from this file.
"""
import os

# Basic auth on every page and API call.
basic_auth = [f"{os.environ['FLOWER_USER']}:{os.environ['FLOWER_PASSWORD']}"]
port = 5555
# Ask the workers to send task events (the same as `spacer worker` with events
# on), so Flower shows every task's state, runtime and error.
enable_events = True
# Keep the task history across Flower restarts (volume flower-data).
persistent = True
db = "/data/flower.db"
state_save_interval = 60000  # milliseconds
max_tasks = 50000
# Workers scaled in by autoscaling disappear from the dashboard after 1 hour.
purge_offline_workers = 3600
