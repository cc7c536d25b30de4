"""The training bar of the main job counts the epochs the worker reports."""
from __future__ import annotations

from dataclasses import replace

from spacer_survey.progress import bar, epoch_follower
from workers.client import TaskResult


def _reports(*progress):
    """What polling a training returns: queued, started, then PROGRESS."""
    yield TaskResult('t', 'PENDING')
    yield TaskResult('t', 'STARTED')
    for p in progress:
        yield TaskResult('t', 'PROGRESS', progress=p)


def test_the_bar_follows_the_reported_epochs(capsys):
    with bar(10, 'Training', 'epoch', True) as progress:
        follow = epoch_follower(progress)
        counts = []
        for outcome in _reports({'epoch': 1, 'epochs': 10, 'ref_acc': 0.5},
                                {'epoch': 1, 'epochs': 10, 'ref_acc': 0.5},
                                {'epoch': 4, 'epochs': 10, 'ref_acc': 0.625}):
            follow(outcome.progress)
            counts.append(progress.n)
        assert counts == [0, 0, 1, 1, 4]
        assert progress.postfix == 'ref_acc=0.625'
        shown = str(progress)
    assert '4/10' in shown and 'ref_acc=0.625' in shown
    # Time left: tqdm's "<remaining" after the elapsed time.
    assert '<' in shown.split('4/10')[1]
    assert 'Training' in capsys.readouterr().err


def test_the_bar_ignores_reports_it_cannot_read():
    with bar(5, 'Training', 'epoch', True) as progress:
        follow = epoch_follower(progress)
        for report in (None, {}, {'epoch': 'three'}, ['epoch', 3],
                       {'epoch': 2, 'epochs': 5, 'ref_acc': None}):
            follow(report)
        assert progress.n == 2 and not progress.postfix
        follow({'epoch': 1, 'epochs': 5, 'ref_acc': 0.1})  # never goes back
        assert progress.n == 2


def test_the_bar_takes_the_workers_epoch_count():
    with bar(None, 'Training', 'epoch', True) as progress:
        epoch_follower(progress)({'epoch': 3, 'epochs': 7, 'ref_acc': 1.0})
        assert (progress.n, progress.total) == (3, 7)


def test_a_disabled_bar_follows_without_output(capsys):
    with bar(4, 'Training', 'epoch', False) as progress:
        epoch_follower(progress)({'epoch': 2, 'epochs': 4, 'ref_acc': 0.5})
    assert capsys.readouterr().err == ''


def test_the_queue_dispatcher_reports_epochs_while_training(tmp_path, monkeypatch):
    """Through the embedded worker: run_one's on_wait hears the epochs."""
    from spacer import config
    from tests.workers.progress_checks import EPOCHS
    from tests.workers.scenario import Scenario
    from tests.workers.slow_classes import CLASS_PATHS, SlowTrainer
    from workers.app import make_app
    from workers.client import Client
    from spacer_survey.dispatch import QueueDispatcher
    from workers.settings import load
    assert not config.BROKER_URL, "this test needs the embedded default"
    monkeypatch.setattr(config, 'EXTRA_CLASS_PATHS', CLASS_PATHS)
    queues = {kind: f'mainjob-progress-{kind}' for kind in ('extract', 'train', 'classify')}
    client = Client(make_app(replace(load(), queues=queues)))
    scenario = Scenario('filesystem', str(tmp_path), n_images=4)
    scenario.put_images()
    for i in range(scenario.n_images):
        client.wait(client.submit('extract_features', scenario.extract_msg(i)), 60)
    train = scenario.train_msg(epochs=EPOCHS)
    train.trainer = SlowTrainer(epoch_delay=0.4)

    heard = []
    with bar(EPOCHS, 'Training', 'epoch', True) as progress:
        follow = epoch_follower(progress)

        def on_wait(report):
            heard.append(report)
            follow(report)
        returned = QueueDispatcher(client, timeout=120).run_one(
            'train_classifier', train, on_wait=on_wait)
        counts_seen = progress.n
    epochs = [r['epoch'] for r in heard if r]
    assert epochs, f"no epochs reported: {heard}"
    assert epochs == sorted(epochs) and 1 <= epochs[0] and epochs[-1] <= EPOCHS
    assert counts_seen == epochs[-1]
    assert all(r['ref_acc'] == returned.ref_accs[r['epoch'] - 1] for r in heard if r)
