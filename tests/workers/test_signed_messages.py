"""
Signed messages (workers.signing) through a real Redis and a real `spacer
worker` started the documented way: a worker with SIGNING_* set runs only
messages signed by a key whose certificate is in its store, drops every
other one with one log line, and keeps serving.

Producers that sign run in processes of their own: Celery's signing
serializer is registered in kombu's process-wide registry, and the test
process must stay a plain JSON one for the other tests.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.workers.certs import signing_identity
from tests.workers.scenario import Scenario
from tests.workers.acl_users import as_role, denied_log
from tests.workers.acl_users import url as acl_url
from tests.workers.services import ROOT, SPACER, client_for, wait_until, worker_env, workers
from workers.job_state_store import redis_client

pytestmark = [pytest.mark.integration]

REFUSED = 'Refused a message naming task'

# A producer process: workers.client configured by its environment only
# (SPACER_BROKER_URL, SPACER_SIGNING_*), as a web server would be.
PRODUCER = r'''
import json, sys
from workers import client
task, message, task_id_file, wait = json.loads(sys.stdin.read())
task_id = client.submit(task, message, dedup_job=False)
open(task_id_file, 'w').write(task_id)
out = {'id': task_id}
if wait:
    result = client.default_client().wait_result(task_id, timeout=wait)
    out.update(state=result.state, value=result.value, error_type=result.error_type)
print(json.dumps(out))
'''

# A trusted key wrapping a pickle body in its signature: Celery's own auth
# serializer would unpickle it after checking the signature.
SIGNED_PICKLE = r'''
import json, sys
from celery import Celery
from celery.security.serialization import register_auth
from kombu.serialization import registry
url, queue, task_id, message, key, cert = sys.argv[1:7]
register_auth(open(key).read(), None, open(cert).read(), None, 'sha256', serializer='pickle')
registry.enable('auth')
app = Celery('attacker', broker=url)
app.send_task('spacer.extract_features', args=[json.loads(message)], task_id=task_id,
              queue=queue, exchange=queue, routing_key=queue, serializer='auth')
'''


@pytest.fixture(scope='module')
def identities(tmp_path_factory):
    """Trusted producer and worker identities (their certificates in the
    store), an untrusted one, and one copying the producer's signer id."""
    folder = tmp_path_factory.mktemp('signing')
    store = folder / 'trusted'
    store.mkdir()
    ids = {name: signing_identity(folder, name)
           for name in ('producer', 'worker', 'flower', 'stranger')}
    for name in ('producer', 'worker', 'flower'):
        (store / f'{name}.pem').write_bytes(ids[name][1].read_bytes())
    from cryptography import x509
    producer_cert = x509.load_pem_x509_certificate(ids['producer'][1].read_bytes())
    ids['impostor'] = signing_identity(folder, 'impostor', serial=producer_cert.serial_number,
                                       issuer='producer')
    return {'store': store, **ids}


def signing_env(url: str, identities: dict, who: str, root, **settings) -> dict:
    key, cert = identities[who]
    return worker_env(url, SIGNING_KEY=key, SIGNING_CERT=cert,
                      SIGNING_CERT_STORE=identities['store'], FILESYSTEM_ROOTS=root,
                      **settings)


def produce(env: dict, task: str, message: dict, folder, wait: float = 0) -> dict:
    id_file = folder / f'task-id-{uuid.uuid4().hex}'
    done = subprocess.run([sys.executable, '-c', PRODUCER],
                          input=json.dumps([task, message, str(id_file), wait]),
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def refusals(worker) -> list[str]:
    return [line for line in worker.log_text().splitlines() if REFUSED in line]


def test_a_worker_that_takes_signed_messages_refuses_every_other_and_serves_on(
        redis_server, identities, tmp_path):
    url = redis_server.url(9)
    scenario = Scenario('filesystem', str(tmp_path), n_images=6)
    scenario.put_images()
    worker_settings = signing_env(url, identities, 'worker', tmp_path)
    plain = client_for(url)  # a plain JSON producer: the attacker who reaches Redis
    queue = plain.settings.queues['extract']
    with workers(('signed', 'extract', worker_settings, tmp_path)) as (worker,):
        # 1. Plain JSON, as any Redis client can push.
        unsigned = plain.submit('extract_features', scenario.extract_msg(0), dedup_job=False)
        # 2. Signed by a key whose certificate is not in the store.
        stranger = produce(signing_env(url, identities, 'stranger', tmp_path),
                           'extract_features', scenario.extract_msg(1).serialize(), tmp_path)
        # 3. Signed by a key whose certificate copies a trusted signer's id.
        impostor = produce(signing_env(url, identities, 'impostor', tmp_path),
                           'extract_features', scenario.extract_msg(2).serialize(), tmp_path)
        # 4. A trusted signature around a pickle body.
        pickled = str(uuid.uuid4())
        key, cert = identities['producer']
        subprocess.run([sys.executable, '-c', SIGNED_PICKLE, url, queue, pickled,
                        json.dumps(scenario.extract_msg(3).serialize()), str(key), str(cert)],
                       check=True, timeout=60, cwd=ROOT, env=worker_settings)
        wait_until(lambda: len(refusals(worker)) >= 4, 60, 'four refusals')

        # The worker serves on: a signed message runs end to end and its
        # producer reads the result.
        signed = produce(signing_env(url, identities, 'producer', tmp_path),
                         'extract_features', scenario.extract_msg(4).serialize(), tmp_path,
                         wait=60)
        assert signed['state'] == 'SUCCESS', signed
        assert 'runtime' in signed['value']
        scenario.check_features(4)

        lines = refusals(worker)
        assert worker.proc.poll() is None
    assert len(lines) == 4, lines
    reasons = ' '.join(lines)
    assert 'not signed (content type application/json)' in reasons
    assert 'outside SIGNING_CERT_STORE' in reasons
    assert 'does not match its body' in reasons
    assert 'signed body is not JSON' in reasons
    for task_id in (unsigned, stranger['id'], impostor['id'], pickled):
        assert any(task_id in line for line in lines), (task_id, lines)
        # Dropped, not failed: the unsigned headers name the task id.
        assert plain.result(task_id).state == 'PENDING'
    for i in range(4):  # nothing ran
        assert not Path(scenario.feature_loc(i).key).exists()
    assert redis_client(url).llen(queue) == 0  # dropped, not requeued
    assert 'Traceback' not in worker.log_text()


def test_a_worker_signs_its_own_retries(redis_server, identities, tmp_path):
    """A transient fault is retried by the worker re-publishing the message:
    signed with the worker's key, which the store trusts, so it runs again."""
    url = redis_server.url(10)
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    msg = scenario.extract_msg(0)
    closed_port = free_port()  # nothing listens: connection refused, a transient fault
    msg.image_loc = type(msg.image_loc)('url', f'http://127.0.0.1:{closed_port}/img.png')
    settings = dict(RETRY_MAX=1, RETRY_BACKOFF=0, URL_ALLOWED_NETWORKS='127.0.0.1')
    with workers(('retrying', 'extract', signing_env(url, identities, 'worker', tmp_path,
                                                     **settings), tmp_path)) as (worker,):
        out = produce(signing_env(url, identities, 'producer', tmp_path, **settings),
                      'extract_features', msg.serialize(), tmp_path, wait=60)
        log = worker.log_text()
    assert out['state'] == 'FAILURE', out
    assert 'retry 1 of 1' in log, log[-3000:]
    assert REFUSED not in log


OUTBOX_CHECK = r'''
import json
from workers import client, outbox, signing
from workers.job_state_store import redis_client
app = client.default_client().app
assert signing.signs(app)
redis = redis_client(app.conf.broker_write_url)
outcome = {}
# A copy the producer signed reads back; the same copy under another task
# id, an unsigned copy and a tampered one are refused.
sealed = signing.seal(app, json.dumps(['id-1', 'spacer.extract_features', 'extract', {}, 1, 2]))
outcome['own'] = outbox._read_copy(app, 'id-1', sealed)
outcome['moved'] = outbox._read_copy(app, 'id-2', sealed)
outcome['unsigned'] = outbox._read_copy(
    app, 'id-3', json.dumps(['spacer.extract_features', 'extract', {}, 1, 2]))
outcome['tampered'] = outbox._read_copy(app, 'id-1', sealed[:-8] + 'AAAAAAA=')
print(json.dumps(outcome))
'''


def test_the_outbox_audit_sends_again_only_copies_its_producer_signed(
        redis_server, identities, tmp_path):
    """A copy planted in the outbox by whoever reaches Redis would go out
    under the auditing worker's own signature: it is refused instead."""
    env = signing_env(redis_server.url(11), identities, 'worker', tmp_path)
    done = subprocess.run([sys.executable, '-c', OUTBOX_CHECK], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {'own': ['spacer.extract_features', 'extract', {}, 1, 2],
                       'moved': None, 'unsigned': None, 'tampered': None}, outcome
    assert done.stderr.count('outbox copy is refused') == 3, done.stderr


def test_signing_settings_must_come_together(monkeypatch, identities):
    from spacer.exceptions import ConfigError
    from workers import signing

    for name in signing.SETTING_NAMES:
        monkeypatch.delenv(f'SPACER_{name}', raising=False)
    assert signing.configured() is None
    monkeypatch.setenv('SPACER_SIGNING_KEY', str(identities['producer'][0]))
    with pytest.raises(ConfigError, match='SIGNING_CERT, SIGNING_CERT_STORE'):
        signing.configured()


def test_the_embedded_worker_never_signs(monkeypatch, identities):
    """No broker: messages never leave the process, so no signing is set up
    (and the process-wide serializer registry is left alone)."""
    from workers.app import celery_config
    from workers.settings import load

    key, cert = identities['producer']
    monkeypatch.delenv('SPACER_BROKER_URL', raising=False)
    monkeypatch.setenv('SPACER_SIGNING_KEY', str(key))
    monkeypatch.setenv('SPACER_SIGNING_CERT', str(cert))
    monkeypatch.setenv('SPACER_SIGNING_CERT_STORE', str(identities['store']))
    settings = load()
    assert settings.signing is not None and settings.embedded
    assert celery_config(settings)['task_serializer'] == 'json'


def spacer_cli(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    from tests.workers.services import SPACER
    return subprocess.run([str(SPACER), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_spacer_submit_status_and_purge_sign_what_they_send(redis_server, identities,
                                                             tmp_path):
    """The commands publish signed messages too: `spacer submit` runs a task
    end to end, `spacer status` gets the worker's (signed) answer to its
    (signed) inspect, and `spacer purge` reads the signed messages it removes
    (their tasks REVOKED, their job keys released)."""
    url = redis_server.url(12)
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    producer = signing_env(url, identities, 'producer', tmp_path)
    message = tmp_path / 'extract.json'
    message.write_text(json.dumps(scenario.extract_msg(0).serialize()))
    waiting = tmp_path / 'classify.json'
    waiting.write_text(json.dumps(scenario.classify_features_msg(0).serialize()))
    with workers(('cli', 'extract', signing_env(url, identities, 'worker', tmp_path),
                  tmp_path)) as (worker,):
        submitted = spacer_cli(producer, 'submit', str(message), '--wait', '--timeout', '60')
        assert submitted.returncode == 0, submitted.stderr
        assert 'runtime' in submitted.stdout
        status = spacer_cli(producer, 'status', '--json')
        assert status.returncode == 0, status.stderr
        assert worker.name in status.stdout
        queued = spacer_cli(producer, 'submit', str(waiting))  # nobody consumes classify
        assert queued.returncode == 0, queued.stderr
        task_id = queued.stdout.strip().splitlines()[-1]
        purged = spacer_cli(producer, 'purge', 'classify')
        assert purged.returncode == 0, purged.stderr
        again = spacer_cli(producer, 'submit', str(waiting))  # the job key was released
        log = worker.log_text()
    assert ('classify: 1 message(s) removed, 1 task(s) marked REVOKED, 1 job key(s)'
            ' released') in purged.stdout, purged.stdout
    assert client_for(url).result(task_id).state == 'REVOKED'
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] != task_id
    assert REFUSED not in log


FOREIGN_SIGNING_PRODUCER = r'''
import json, sys
exec(sys.argv[1])  # docs/wire.md: the producer's configuration
exec(sys.argv[2])  # docs/wire.md: signing
app = signing_producer(sys.argv[3], sys.argv[3], *sys.argv[4:7])
result = app.send_task('spacer.extract_features', args=[json.loads(sys.stdin.read())])
value = result.get(timeout=60, propagate=False)
print(json.dumps({'state': result.state, 'value': value if result.state == 'SUCCESS' else None,
                  'imported': sorted(m for m in sys.modules
                                     if m.split('.')[0] in ('spacer', 'workers'))}))
'''


def test_a_plain_celery_app_signing_as_the_wire_document_says_is_served(
        redis_server, identities, tmp_path):
    import re
    url = redis_server.url(13)
    text = (ROOT / 'docs' / 'wire.md').read_text()
    snippets = [re.search(rf'<!-- {marker} -->\s*```python\n(.*?)```', text, re.S).group(1)
                for marker in ('wire-config', 'wire-signing')]
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    key, cert = identities['producer']
    env = signing_env(url, identities, 'worker', tmp_path)
    with workers(('foreign', 'extract', env, tmp_path)) as (worker,):
        done = subprocess.run(
            [sys.executable, '-c', FOREIGN_SIGNING_PRODUCER, *snippets, url, str(key), str(cert),
             str(identities['store'])],
            input=json.dumps(scenario.extract_msg(0).serialize()), capture_output=True,
            text=True, timeout=120, cwd=tmp_path,
            env={'PATH': env['PATH'], 'PYTHONNOUSERSITE': '1'})
        log = worker.log_text()
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome['state'] == 'SUCCESS', outcome
    assert outcome['imported'] == []
    assert REFUSED not in log
    scenario.check_features(0)


class Flower:
    """``celery -A workers.app flower`` (docs/operations.md, Signed
    messages), on a free port of 127.0.0.1, with basic auth."""

    def __init__(self, env: dict, log: Path):
        self.port = free_port()
        password = uuid.uuid4().hex
        self.auth = 'Basic ' + base64.b64encode(f'admin:{password}'.encode()).decode()
        with open(log, 'w') as out:
            self.proc = subprocess.Popen(
                [str(SPACER.parent / 'celery'), '-A', 'workers.app', 'flower',
                 '--address=127.0.0.1', f'--port={self.port}',
                 f'--basic-auth=admin:{password}'],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.log = log
        wait_until(self._answers, 60, f'Flower on port {self.port}')

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.get('/healthcheck') == b'OK'
        except OSError:
            return False

    def get(self, path: str, method: str = 'GET') -> bytes:
        request = urllib.request.Request(f'http://127.0.0.1:{self.port}{path}', method=method,
                                         data=b'' if method == 'POST' else None,
                                         headers={'Authorization': self.auth})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def test_flower_with_a_key_of_its_own_sees_and_controls_signing_workers(
        acl_redis, identities, tmp_path):
    """A signing worker obeys only signed remote control. Flower run as the
    compose overlay runs it (``celery -A workers.app flower``, compose's
    Redis users, a key of its own whose certificate is in the workers'
    store) lists the worker with its inspect answers and has a control
    command obeyed, with no command denied to its Redis user; Flower without
    a key gets no answer, and the worker drops its commands and serves on."""
    port = acl_redis
    as_role(port, 'admin').acl_log_reset()
    worker_environment = worker_env(acl_url(port, 'worker', 0), acl_url(port, 'worker', 1),
                                    SIGNING_KEY=identities['worker'][0],
                                    SIGNING_CERT=identities['worker'][1],
                                    SIGNING_CERT_STORE=identities['store'],
                                    FILESYSTEM_ROOTS=tmp_path)
    flower_signing = {f'SIGNING_{k}': v for k, v in zip(
        ('KEY', 'CERT'), identities['flower'])} | {'SIGNING_CERT_STORE': identities['store']}
    flower_urls = (acl_url(port, 'flower', 0), acl_url(port, 'flower', 1))
    with workers(('flowered', 'extract', worker_environment, tmp_path)) as (worker,):
        flower = Flower(worker_env(*flower_urls, **flower_signing), tmp_path / 'flower.log')
        try:
            listed = json.loads(flower.get('/api/workers?refresh=1'))
            grown = flower.get(f'/api/worker/pool/grow/{worker.name}?n=1', method='POST')
        finally:
            flower.stop()
        plain = Flower(worker_env(*flower_urls), tmp_path / 'flower-plain.log')
        try:
            unanswered = json.loads(plain.get('/api/workers?refresh=1'))
            with pytest.raises(urllib.error.HTTPError):
                plain.get(f'/api/worker/pool/grow/{worker.name}?n=1', method='POST')
        finally:
            plain.stop()
        # The worker serves on: a signed producer's task still runs.
        scenario = Scenario('filesystem', str(tmp_path), n_images=1)
        scenario.put_images()
        producer = worker_env(acl_url(port, 'producer', 0), acl_url(port, 'producer', 1),
                              SIGNING_KEY=identities['producer'][0],
                              SIGNING_CERT=identities['producer'][1],
                              SIGNING_CERT_STORE=identities['store'])
        done = produce(producer, 'extract_features', scenario.extract_msg(0).serialize(),
                       tmp_path, wait=60)
    # Each inspect answer is a signed reply to a signed broadcast.
    assert 'spacer.extract_features' in listed.get(worker.name, {}).get('registered', []), listed
    assert b'Growing' in grown, grown
    assert not set(unanswered.get(worker.name, {})) & {'registered', 'active_queues', 'stats'}, \
        unanswered
    assert done['state'] == 'SUCCESS', done
    assert denied_log(port) == [], [(e["username"], e["object"], str(e.get("client-info"))) for e in denied_log(port)]
