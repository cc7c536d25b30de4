"""The main job: a folder of survey photos and a CoralNet annotation export in,
a classifier, predictions for the unannotated points and a report out.

The command line (`spacer run`, `spacer demo`) lives in `cli.py`; the work is
dispatched through the task queue (`workers.client`), so the same job runs on
the embedded in-process worker or on a fleet.
"""
