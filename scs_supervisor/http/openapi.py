"""``/openapi.json``: an OpenAPI 3.1 description of every endpoint, built once from plain data.

The field rules come from :mod:`scs_supervisor.validation`, so the description and the checks
cannot drift apart on names, choices and limits.
"""

from __future__ import annotations

import json

import falcon

from scs_supervisor import __version__
from scs_supervisor import validation as v

NAME = {'type': 'string', 'pattern': f'^{v.NODE_NAME_RE.pattern}$'}
QUEUE_NAME = {'type': 'string', 'minLength': 1, 'maxLength': v.QUEUE_NAME_MAX,
              'pattern': '^[!-~]+$', 'description': 'printable ASCII, none of , % " \' \\ ` ; # '
                                                    '[ ] = $'}
NULLABLE_STRING = {'type': ['string', 'null']}
ERROR_CODES = {
    '400': 'Invalid input: the description names the field and the rule',
    '401': 'Missing or wrong bearer token',
    '404': 'No such resource',
    '409': 'Conflict: the name is taken, or the resource is in use',
    '413': 'Body over 64 KiB',
    '415': 'The body is not application/json',
    '503': 'The database or supervisord is unavailable',
    '504': 'Timed out waiting (the header X-Operation names the operation)',
}
NODE_FIELDS = {
    'queues': {'type': 'array', 'items': QUEUE_NAME, 'maxItems': v.QUEUES_MAX},
    'min_concurrency': {'type': 'integer', 'minimum': 0},
    'max_concurrency': {'type': 'integer', 'minimum': 1},
    'pool': {'enum': list(v.POOLS)},
    'app': {'type': ['string', 'null'], 'pattern': f'^{v.APP_RE.pattern}$',
            'description': 'module[:attribute] of the Celery app'},
    'broker': {**NULLABLE_STRING, 'description': 'a broker name or URL; null: the default'},
    'loglevel': {'enum': list(v.LOGLEVELS)},
    'directory': {'type': ['string', 'null'], 'pattern': f'^{v.DIRECTORY_RE.pattern}$',
                  'description': 'absolute path to run in'},
    'env': {'type': 'object', 'additionalProperties': {'type': 'string'},
            'propertyNames': {'pattern': f'^{v.ENV_KEY_RE.pattern}$'},
            'maxProperties': v.ENV_MAX_KEYS,
            'description': 'no LD_*, PYTHON* start-up hooks or other loader variables'},
    'enabled': {'type': 'boolean'},
}
QUEUE_FIELDS = {
    'exchange': {'type': ['string', 'null'], 'maxLength': v.QUEUE_NAME_MAX,
                 'description': 'empty: the default exchange; null: the queue name; else as a '
                                'queue name'},
    'exchange_type': {'enum': list(v.EXCHANGE_TYPES)},
    'routing_key': {'type': ['string', 'null'], 'pattern': f'^{v.ROUTING_KEY_RE.pattern}$',
                    'description': 'default: the queue name'},
    'options': {'type': ['object', 'null'], 'description': 'kombu Queue options: '
                                                 + ', '.join(v.QUEUE_OPTIONS)},
}
SCHEMAS = {
    'Error': {'type': 'object', 'required': ['title'],
              'properties': {'title': {'type': 'string'}, 'description': {'type': 'string'}}},
    'NodeCreate': {'type': 'object', 'required': ['name'], 'additionalProperties': False,
                   'properties': {'name': NAME, **NODE_FIELDS}},
    'NodeChange': {'type': 'object', 'additionalProperties': False, 'minProperties': 1,
                   'properties': NODE_FIELDS},
    'Node': {'type': 'object', 'required': ['name', *NODE_FIELDS],
             'properties': {'name': NAME, **NODE_FIELDS,
                            'state': {'type': 'string'}, 'pid': {'type': 'integer'},
                            'consuming': {'type': ['array', 'null']},
                            'restarts': {'type': 'integer'},
                            'last_error': {'type': 'string'}, 'failed': {'type': 'string'},
                            'broker_url': {'type': 'string',
                                           'description': 'password masked'}}},
    'Autoscale': {'type': 'object', 'required': ['min', 'max'], 'additionalProperties': False,
                  'properties': {'min': {'type': 'integer', 'minimum': 0},
                                 'max': {'type': 'integer', 'minimum': 1}}},
    'Accepted': {'type': 'object', 'required': ['operation'],
                 'properties': {'operation': {'type': 'string'}}},
    'Operation': {'type': 'object', 'required': ['id', 'status'],
                  'properties': {'id': {'type': 'string'},
                                 'status': {'enum': ['pending', 'done', 'failed', 'timeout']},
                                 'detail': {'type': 'string'}, 'nodes': {'type': 'array'}}},
    'QueueCreate': {'type': 'object', 'required': ['name'], 'additionalProperties': False,
                    'properties': {'name': QUEUE_NAME, **QUEUE_FIELDS}},
    'QueueChange': {'type': 'object', 'additionalProperties': False, 'minProperties': 1,
                    'properties': QUEUE_FIELDS},
    'Queue': {'type': 'object', 'required': ['name', 'nodes'],
              'properties': {'name': QUEUE_NAME, **QUEUE_FIELDS,
                             # defaults to the name, which may hold more than an exchange
                             'exchange': {'type': 'string'}, 'routing_key': {'type': 'string'},
                             'nodes': {'type': 'array', 'items': NAME}}},
    'BrokerCreate': {'type': 'object', 'required': ['name', 'url'],
                     'additionalProperties': False,
                     'properties': {'name': NAME, 'url': {
                         'type': 'string', 'description': 'scheme: '
                                                          + ', '.join(v.BROKER_SCHEMES)}}},
    'BrokerChange': {'type': 'object', 'additionalProperties': False, 'minProperties': 1,
                     'properties': {'name': NAME, 'url': {'type': 'string'}}},
    'Broker': {'type': 'object', 'required': ['name', 'url', 'nodes'],
               'properties': {'name': NAME, 'url': {'type': 'string',
                                                    'description': 'password masked'},
                              'nodes': {'type': 'array', 'items': NAME}}},
    'Health': {'type': 'object', 'required': ['status'],
               'properties': {'status': {'enum': ['ok', 'degraded']},
                              'brokers': {'type': 'object'}}},
}
WAIT_PARAMS = [
    {'name': 'wait', 'in': 'query', 'schema': {'enum': ['consuming']},
     'description': 'answer once the worker consumes exactly its queues'},
    {'name': 'timeout', 'in': 'query',
     'schema': {'type': 'integer', 'minimum': 1, 'maximum': 3600}},
    {'name': 'async', 'in': 'query', 'schema': {'type': 'boolean'},
     'description': 'answer 202 at once with an operation to poll'},
]


def ref(name: str) -> dict:
    return {'$ref': f'#/components/schemas/{name}'}


def body(schema: str) -> dict:
    return {'required': True, 'content': {'application/json': {'schema': ref(schema)}}}


def operation(summary: str, ok: dict, errors: str = '', *, request: str | None = None,
              params: list | None = None, secured: bool = True) -> dict:
    """One operation: its success answers (status -> schema or None) and error statuses."""
    responses = {}
    for status, schema in ok.items():
        answer = {'description': summary}
        if schema is not None:
            answer['content'] = {'application/json': {'schema': schema}}
        responses[status] = answer
    for status in errors.split():
        responses[status] = {'description': ERROR_CODES[status],
                             'content': {'application/json': {'schema': ref('Error')}}}
    out = {'summary': summary, 'responses': responses}
    if request:
        out['requestBody'] = body(request)
    if params:
        out['parameters'] = params
    if not secured:
        out['security'] = []
    return out


def path_param(name: str, schema: dict) -> dict:
    return {'name': name, 'in': 'path', 'required': True, 'schema': schema}


def changed(summary: str, errors: str, **kwargs) -> dict:
    """A change answered with the node, 202 when asynchronous."""
    return operation(summary, {'200': ref('Node'), '202': ref('Accepted')},
                     f'400 401 404 {errors} 503 504', params=WAIT_PARAMS, **kwargs)


def build_spec() -> dict:
    node = [path_param('name', NAME)]
    queue = [path_param('name', QUEUE_NAME)]
    broker = [path_param('name', NAME)]
    nodes_list = {'type': 'array', 'items': ref('Node')}
    return {
        'openapi': '3.1.0',
        'info': {'title': 'scs-supervisor', 'version': __version__,
                 'description': 'Celery workers run by supervisord, kept in line with a SQL '
                                'database. Every POST, PUT, PATCH and DELETE needs '
                                'Authorization: Bearer <token> ($SCS_HOME/api-token).'},
        'components': {'schemas': SCHEMAS, 'securitySchemes': {
            'bearer': {'type': 'http', 'scheme': 'bearer'}}},
        'paths': {
            '/nodes': {
                'get': operation('List the nodes of this agent', {'200': nodes_list}, '503',
                                 secured=False),
                'post': operation('Create a node', {'201': ref('Node'), '202': ref('Accepted')},
                                  '400 401 409 413 415 503 504', request='NodeCreate',
                                  params=WAIT_PARAMS),
            },
            '/nodes/{name}': {
                'parameters': node,
                'get': operation('One node: desired and observed state', {'200': ref('Node')},
                                 '400 404 503', secured=False),
                'patch': changed('Change some fields of a node', '409 413 415',
                                 request='NodeChange'),
                'delete': operation('Delete a node and stop its worker', {'204': None},
                                    '400 401 404 503'),
            },
            '/nodes/{name}/disable': {'parameters': node, 'post': operation(
                'Disable a node: its worker stops', {'200': ref('Node')}, '400 401 404 503')},
            '/nodes/{name}/enable': {'parameters': node,
                                     'post': changed('Enable a node', '409')},
            '/nodes/{name}/restart': {'parameters': node,
                                      'post': changed('Restart the node\'s worker', '409')},
            '/nodes/{name}/autoscale': {'parameters': node, 'put': changed(
                'Set min and max concurrency', '409 413 415', request='Autoscale')},
            '/nodes/{name}/queues/{queue}': {
                'parameters': [*node, path_param('queue', QUEUE_NAME)],
                'put': changed('Consume a queue too', '409'),
                'delete': changed('Stop consuming a queue', '409'),
            },
            '/operations/{op_id}': {'get': operation(
                'An asynchronous change', {'200': ref('Operation')}, '404 503',
                params=[path_param('op_id', {'type': 'string'})], secured=False)},
            '/queues': {
                'get': operation('List queues and the nodes consuming each',
                                 {'200': {'type': 'array', 'items': ref('Queue')}}, '503',
                                 secured=False),
                'post': operation('Declare a queue', {'201': ref('Queue')},
                                  '400 401 409 413 415 503', request='QueueCreate'),
            },
            '/queues/{name}': {
                'parameters': queue,
                'get': operation('One queue', {'200': ref('Queue')}, '404 503', secured=False),
                'patch': operation('Change a queue declaration', {'200': ref('Queue')},
                                   '400 401 404 413 415 503', request='QueueChange'),
                'delete': operation(
                    'Delete a queue (in use: 409 unless force=true)', {'204': None},
                    '400 401 404 409 503',
                    params=[{'name': 'force', 'in': 'query', 'schema': {'type': 'boolean'}}]),
            },
            '/brokers': {
                'get': operation('List brokers (passwords masked)',
                                 {'200': {'type': 'array', 'items': ref('Broker')}}, '503',
                                 secured=False),
                'post': operation('Add a broker', {'201': ref('Broker')},
                                  '400 401 409 413 415 503', request='BrokerCreate'),
            },
            '/brokers/{name}': {
                'parameters': broker,
                'get': operation('One broker', {'200': ref('Broker')}, '404 503',
                                 secured=False),
                'patch': operation('Rename a broker or change its URL', {'200': ref('Broker')},
                                   '400 401 404 409 413 415 503', request='BrokerChange'),
                'delete': operation('Delete a broker no node uses', {'204': None},
                                    '401 404 409 503'),
            },
            '/health': {'get': operation(
                'Database, supervisord, listener and brokers',
                {'200': ref('Health'), '503': ref('Health')}, secured=False)},
            '/metrics': {'get': {'summary': 'Prometheus metrics', 'security': [], 'responses': {
                '200': {'description': 'Prometheus text format',
                        'content': {'text/plain': {'schema': {'type': 'string'}}}}}}},
            '/openapi.json': {'get': {'summary': 'This document', 'security': [], 'responses': {
                '200': {'description': 'OpenAPI 3.1',
                        'content': {'application/json': {'schema': {'type': 'object'}}}}}}},
        },
        'security': [{'bearer': []}],
    }


class OpenAPI:
    """``/openapi.json``."""

    def __init__(self):
        self.document = json.dumps(build_spec()).encode()

    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.document
