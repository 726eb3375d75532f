from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from scs_supervisor.agent import render_supervisord_conf
from scs_supervisor.settings import Settings, SettingsError


def test_agent_config_is_read_by_supervisord(tmp_path):
    settings = Settings.load(environ={}, section={
        'home': str(tmp_path), 'database_url': 'postgresql://u:p%40ss@db/scs',
        'agent_id': 'box1'})
    conf = tmp_path / 'supervisord.conf'
    conf.write_text(render_supervisord_conf(settings))
    (tmp_path / 'logs').mkdir()
    options = ServerOptions()
    options.realize(['-c', str(conf)])
    [scs] = [p for p in options.rpcinterface_factories if p[0] == 'scs']
    assert scs[2]['database_url'] == 'postgresql://u:p%40ss@db/scs'
    assert scs[2]['agent_id'] == 'box1'
    assert options.nodaemon is True
    assert options.serverurl == f'unix://{tmp_path}/supervisor.sock'


def test_unsafe_setting_is_refused(tmp_path):
    settings = Settings.load(environ={}, section={'home': str(tmp_path), 'agent_id': 'a ;b'})
    with pytest.raises(SettingsError, match='agent_id'):
        render_supervisord_conf(settings)


def test_settings_from_environment_and_section(tmp_path):
    settings = Settings.load(environ={'SCS_HOME': str(tmp_path), 'SCS_AGENT_ID': 'env'},
                             section={'agent_id': 'section', 'stopwaitsecs': '30'})
    assert settings.agent_id == 'section' and settings.stopwaitsecs == 30
    assert settings.database_url == f'sqlite:///{tmp_path}/scs.db'
    assert settings.broker_url == f'scsfs://localhost/{tmp_path}/broker'
    with pytest.raises(SettingsError, match='unknown scs setting'):
        Settings.load(environ={}, section={'bogus': '1'})
    with pytest.raises(SettingsError, match='stopwaitsecs must be an integer'):
        Settings.load(environ={}, section={'stopwaitsecs': 'x'})


CONF = Path(__file__).resolve().parents[2] / 'conf'


def test_shipped_supervisord_conf_parses(tmp_path, monkeypatch):
    monkeypatch.setenv('SCS_HOME', str(tmp_path))
    (tmp_path / 'logs').mkdir()
    options = ServerOptions()
    options.realize(['-c', str(CONF / 'supervisord.conf')])
    assert [p[0] for p in options.rpcinterface_factories] == ['supervisor', 'scs']
    assert options.serverurl == f'unix://{tmp_path}/supervisor.sock'


def test_shipped_snippet_parses_when_included(tmp_path):
    (tmp_path / 'logs').mkdir()
    snippet = tmp_path / 'scs.conf'  # as a user would install it, with their home
    snippet.write_text((CONF / 'scs.conf').read_text().replace('/var/lib/scs', str(tmp_path)))
    main = tmp_path / 'supervisord.conf'
    main.write_text(f'[supervisord]\nlogfile={tmp_path}/logs/s.log\n'
                    f'[unix_http_server]\nfile={tmp_path}/s.sock\n'
                    f'[include]\nfiles={snippet}\n')
    options = ServerOptions()
    options.realize(['-c', str(main)])
    [scs] = [p for p in options.rpcinterface_factories if p[0] == 'scs']
    assert scs[2] == {'home': str(tmp_path)}
    [listener] = [g for g in options.process_group_configs if g.name == 'scs_listener']
    assert listener.process_configs[0].environment == {'SCS_HOME': str(tmp_path)}
