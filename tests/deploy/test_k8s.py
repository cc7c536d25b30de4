"""deploy/k8s/: valid Kubernetes objects, KEDA scaling on the right queues, graceful scale-in."""
from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from tests.deploy.project_files import (K8S_DIR, known_settings, load_yaml_documents,
                                        parse_spacer_command, queues_of)

K8S_VERSION = '1.30.0'
KEDA_KINDS = {'ScaledObject', 'TriggerAuthentication'}


def all_documents() -> list[dict]:
    docs = []
    for path in sorted(K8S_DIR.glob('*.yaml')):
        if path.name != 'kustomization.yaml':
            docs += load_yaml_documents(path)
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d['metadata']['name']: d for d in all_documents() if d['kind'] == kind}


def worker_container(deployment: dict) -> dict:
    (container,) = deployment['spec']['template']['spec']['containers']
    return container


def test_core_objects_validate_against_the_kubernetes_schema():
    for doc in all_documents():
        if doc['kind'] not in KEDA_KINDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_catches_a_misspelt_field():
    deployment = next(iter(by_kind('Deployment').values()))
    deployment['spec']['template']['spec']['terminationGracePeriod'] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S_DIR / 'kustomization.yaml').read_text())
    listed = set(kustomization['resources'])
    present = {p.name for p in K8S_DIR.glob('*.yaml')} - {'kustomization.yaml'}
    assert listed == present


@pytest.mark.parametrize('name', ['spacer-worker-gpu', 'spacer-worker-train',
                                  'spacer-worker-classify'])
def test_worker_command_parses_and_grace_outlasts_its_queues_hard_limit(name):
    from workers.settings import load
    settings = load()
    deployment = by_kind('Deployment')[name]
    argv = worker_container(deployment)['command']
    parse_spacer_command(argv)
    hard = max(settings.hard_limit(settings.kind_of_queue(q)) for q in queues_of(argv))
    assert deployment['spec']['template']['spec']['terminationGracePeriodSeconds'] > hard


def test_liveness_probe_pings_this_worker_and_outlasts_a_long_task():
    from spacer_cli.worker_command import pool_for
    from workers.settings import load
    settings = load()
    for deployment in by_kind('Deployment').values():
        container = worker_container(deployment)
        worker = parse_spacer_command(container['command'])
        probe = container['livenessProbe']
        script = probe['exec']['command'][2]
        assert f"--destination \"{worker.hostname.replace('%h', '$HOSTNAME')}\"" in script
        kinds = {settings.kind_of_queue(q) for q in queues_of(container['command'])}
        assert pool_for(kinds, cpus=8)[0] == 'prefork'  # the main process answers
        if 'extract' in kinds:
            patience = probe['periodSeconds'] * probe['failureThreshold']
            assert patience > max(settings.hard_limit(k) for k in kinds)


def test_gpu_worker_requests_a_gpu_and_cpu_workers_do_not():
    deployments = by_kind('Deployment')
    for name, deployment in deployments.items():
        limits = worker_container(deployment)['resources']['limits']
        assert ('nvidia.com/gpu' in limits) == (name == 'spacer-worker-gpu'), name


def test_workers_run_unprivileged():
    for deployment in by_kind('Deployment').values():
        pod = deployment['spec']['template']['spec']
        assert pod['securityContext']['runAsNonRoot'] is True
        assert pod['securityContext']['runAsUser'] != 0
        assert worker_container(deployment)['securityContext']['allowPrivilegeEscalation'] is False


def test_environment_names_are_spacer_settings_and_secrets_stay_in_a_secret():
    settings = known_settings()
    config_map = by_kind('ConfigMap')['spacer-config']
    for name in config_map['data']:
        assert name.startswith('SPACER_') and name[len('SPACER_'):] in settings, name
        assert not re.search('PASSWORD|SECRET|BROKER_URL|RESULT_BACKEND', name), (
            f"{name} holds a password: it belongs in the Secret")
    for deployment in by_kind('Deployment').values():
        container = worker_container(deployment)
        for var in container.get('env', []):
            assert var['name'][len('SPACER_'):] in settings, var['name']
        refs = {next(iter(ref)): ref[next(iter(ref))]['name'] for ref in container['envFrom']}
        assert refs == {'configMapRef': 'spacer-config', 'secretRef': 'spacer-secrets'}


def test_each_queue_scales_its_own_deployment_on_its_lists():
    deployments = by_kind('Deployment')
    scaled = by_kind('ScaledObject')
    auth = by_kind('TriggerAuthentication')
    assert set(scaled) == set(deployments), "every worker Deployment needs a ScaledObject"
    for name, obj in scaled.items():
        spec = obj['spec']
        assert spec['scaleTargetRef']['name'] == name
        assert 0 <= spec['minReplicaCount'] <= spec['maxReplicaCount']
        queues = queues_of(worker_container(deployments[name])['command'])
        lists = set()
        for trigger in spec['triggers']:
            assert trigger['type'] == 'redis'
            meta = trigger['metadata']
            assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata are strings"
            assert int(meta['listLength']) >= 1
            assert trigger['authenticationRef']['name'] in auth
            lists.add(meta['listName'])
        # The plain list and Celery's priority sub-lists ("<queue>\x06\x16<n>").
        for queue in queues:
            assert queue in lists
            assert {f'{queue}\x06\x16{n}' for n in (3, 6, 9)} <= lists
        assert {name.split('\x06\x16')[0] for name in lists} == set(queues)


def test_priority_sub_list_names_match_the_broker_transport():
    from kombu.transport.redis import Channel
    channel_sep = Channel.sep
    assert channel_sep == '\x06\x16'
    assert list(Channel.priority_steps) == [0, 3, 6, 9]


def test_trigger_authentication_reads_keda_s_own_redis_user_from_the_worker_secret():
    (auth,) = by_kind('TriggerAuthentication').values()
    refs = auth['spec']['secretTargetRef']
    assert refs == [
        {'parameter': 'username', 'name': 'spacer-secrets', 'key': 'REDIS_KEDA_USERNAME'},
        {'parameter': 'password', 'name': 'spacer-secrets', 'key': 'REDIS_KEDA_PASSWORD'}]
