"""schemathesis over /openapi.json: generated requests against the app, no server error.

The app runs in waitress on a real SQLite store with the stand-in supervisord of the other HTTP
unit tests (a real one would start a worker for every generated node).
"""

import threading
from collections import Counter

import hypothesis
import pytest
import schemathesis
import waitress
from falcon import testing
from schemathesis import checks
from schemathesis.specs.openapi import checks as oa

from scs_supervisor.http import create_app
from scs_supervisor.http.openapi import build_spec
from scs_supervisor.settings import Settings
from scs_supervisor.store import Store, make_engine, upgrade
from tests.unit.conftest import AUTH, TOKEN, RecordingSupervisor

CASES: Counter = Counter()
#: Every check but positive_data_acceptance: the schema cannot say everything the validation
#: says (min <= max, reserved environment variables), so some schema-valid bodies get a 400.
CHECKS = [checks.not_a_server_error, oa.status_code_conformance, oa.content_type_conformance,
          oa.response_schema_conformance, oa.negative_data_rejection, oa.ignored_auth,
          oa.missing_required_header, oa.unsupported_method]


def build_app(home):
    settings = Settings.load(environ={}, section={'home': str(home), 'agent_id': 'h1'})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    store = Store(engine, default_broker_url=settings.broker_url)
    store.create_node('h1', 'w1', {'queues': ['a']})
    return create_app(settings, store, RecordingSupervisor(store), TOKEN)


@pytest.fixture(scope='module')
def app(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp('schemathesis'))


@pytest.fixture(scope='module')
def base_url(app):
    """The app served by waitress on a free loopback port, as scs-http serves it."""
    server = waitress.create_server(app, host='127.0.0.1', port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.effective_port}'
    server.close()


# The served document is the one built here (test_http_resources checks the route list).
schema = schemathesis.openapi.from_dict(build_spec())


@schema.parametrize()
@hypothesis.settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_no_server_error(case, base_url):
    CASES[case.operation.label] += 1
    case.call_and_validate(base_url=base_url, headers=AUTH, checks=CHECKS)


def test_enough_cases(app):
    operations = sum(1 for path in testing.TestClient(app).simulate_get('/openapi.json')
                     .json['paths'].values() for method in path if method != 'parameters')
    if len(CASES) < operations:
        pytest.skip('run the whole module: not every operation was generated for')
    print(f"schemathesis: {sum(CASES.values())} cases over {len(CASES)} operations")
    assert sum(CASES.values()) >= 500, CASES
