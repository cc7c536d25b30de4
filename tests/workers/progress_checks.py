"""A training that reports its epochs, watched through the producer client."""
from __future__ import annotations

import time

from spacer.messages import JobMsg, TrainClassifierMsg
from tests.workers.scenario import Scenario
from tests.workers.slow_classes import SlowTrainer

EPOCHS = 8


def slow_training(scenario: Scenario, epoch_delay: float,
                  name: str = 'model') -> TrainClassifierMsg:
    train = scenario.train_msg(epochs=EPOCHS)
    train.trainer = SlowTrainer(epoch_delay=epoch_delay)
    train.job_token = f'{train.job_token}-{name}'
    train.model_loc = scenario.loc(f'{name}.pkl')
    train.valresult_loc = scenario.loc(f'{name}.valresult.json')
    return train


def watch_training(client, tmp_path, epoch_delay: float = 0.4,
                   timeout: float = 120, job_of: int = 0) -> tuple[list, dict]:
    """Train through ``client`` with slow epochs; return every distinct
    PROGRESS meta seen while it ran (polled with ``client.result``) and the
    return message. ``job_of``: send that many trainings as one process_job."""
    scenario = Scenario('filesystem', str(tmp_path), n_images=4)
    scenario.put_images()
    for i in range(scenario.n_images):
        client.wait(client.submit('extract_features', scenario.extract_msg(i)), 60)
    if job_of:
        task_id = client.submit('process_job', JobMsg('train_classifier', [
            slow_training(scenario, epoch_delay, f'model{i}') for i in range(job_of)]))
    else:
        task_id = client.submit('train_classifier', slow_training(scenario, epoch_delay))

    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = client.result(task_id)
        if outcome.ready:
            break
        if outcome.state == 'PROGRESS':
            assert not outcome.ok and outcome.value is None
            if outcome.progress not in seen:
                seen.append(outcome.progress)
        else:
            assert outcome.progress is None, outcome
        time.sleep(0.05)
    final = client.wait_result(task_id, timeout)
    assert final.ok and final.progress is None, final
    return seen, final.value


def check_progress(seen: list, returned: dict) -> None:
    """Progress was seen, in order, and agrees with the return message."""
    assert seen, "no PROGRESS state was seen while the training ran"
    epochs_seen = [p['epoch'] for p in seen]
    assert epochs_seen == sorted(epochs_seen) and len(set(epochs_seen)) == len(seen)
    assert all(set(p) == {'epoch', 'epochs', 'ref_acc'} for p in seen)
    assert all(p['epochs'] == EPOCHS and 1 <= p['epoch'] <= EPOCHS for p in seen)
    assert len(returned['ref_accs']) == EPOCHS
    for p in seen:
        assert p['ref_acc'] == returned['ref_accs'][p['epoch'] - 1]


def check_job_progress(seen: list, returned: dict, tasks: int) -> None:
    """Each training of a job reported its epochs, one training after another."""
    assert seen, "no PROGRESS state was seen while the job ran"
    assert all(set(p) == {'task', 'tasks', 'epoch', 'epochs', 'ref_acc'} for p in seen)
    assert all(p['tasks'] == tasks for p in seen)
    order = [(p['task'], p['epoch']) for p in seen]
    assert order == sorted(order) and len(set(order)) == len(seen)
    assert {p['task'] for p in seen} == set(range(1, tasks + 1))
    assert returned['ok'], returned['error_message']
    for p in seen:
        result = returned['results'][p['task'] - 1]
        assert p['ref_acc'] == result['ref_accs'][p['epoch'] - 1]
