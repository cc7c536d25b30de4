"""One training (and classify_features) run, for benchmarks/train.py.

Runs in either environment: ours (.venv) or pyspacer 0.14's
(.venv-pyspacer, started with ``python -P`` so this repository's spacer/
does not shadow pyspacer's). Reads a job JSON, prints a result JSON line.

Job: {"labels": {feature path: [[row, col, label], ...]}, "clf_type",
      "epochs", "classify_feature": path or null, "model_path"}
Timings start after imports; torch is imported first in both, as in a
worker that has it loaded already.
"""
from __future__ import annotations

import json
import resource
import sys
import time


CLASSIFY_RUNS = 50  # best of: a few ms on our side, where noise is large


def rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    import torch  # noqa: F401  (a worker has it loaded)
    import spacer
    from spacer.data_classes import DataLocation, ImageLabels
    from spacer.messages import ClassifyFeaturesMsg, TrainClassifierMsg
    from spacer.task_utils import preprocess_labels
    from spacer.tasks import classify_features, train_classifier

    labels = ImageLabels({
        DataLocation('filesystem', path): [tuple(a) for a in annotations]
        for path, annotations in job['labels'].items()})
    split = preprocess_labels(labels)
    msg = TrainClassifierMsg(
        job_token='bench', trainer='minibatch', nbr_epochs=job['epochs'],
        clf_type=job['clf_type'], labels=split, previous_model_locs=[],
        model_loc=DataLocation('filesystem', job['model_path']),
        valresult_loc=DataLocation('filesystem',
                                   job['model_path'] + '.valresult.json'))
    baseline = rss_bytes()
    start = time.perf_counter()
    result = train_classifier(msg)
    seconds = time.perf_counter() - start
    out = {'spacer': spacer.__file__, 'train_seconds': seconds,
           'train_peak_mb': (peak_rss_bytes() - baseline) / 2**20,
           'acc': result.acc, 'ref_accs': result.ref_accs,
           'train_labels': split.train.label_count,
           'val_labels': split.val.label_count}
    if job.get('classify_feature'):
        cmsg = ClassifyFeaturesMsg(
            job_token='bench',
            feature_loc=DataLocation('filesystem', job['classify_feature']),
            classifier_loc=DataLocation('filesystem', job['model_path']))
        classify_features(cmsg)  # warm: classifier cache, first-call costs
        runs = []
        for _ in range(CLASSIFY_RUNS):
            start = time.perf_counter()
            scores = classify_features(cmsg)
            runs.append(time.perf_counter() - start)
        out['classify_seconds'] = min(runs)
        out['classify_points'] = len(scores.scores)
        out['classify_scores'] = [s for _, _, s in scores.scores]
    print(json.dumps(out))


if __name__ == '__main__':
    main()
