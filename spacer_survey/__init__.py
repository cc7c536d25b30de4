"""The survey application behind `spacer run`: a folder of survey photos and a
CoralNet annotation export in, a classifier, predictions for the unannotated
points, percent cover and an HTML report out.

It sits on top of the producer client: every piece of work is a task sent
through `workers.client` (`dispatch.py`), so the same job runs on the
embedded in-process worker or on a fleet; `workers` never imports it. The
command line (`spacer run`, `classify`, `demo`) lives in `spacer_cli`.
"""
