"""Reading one program file as supervisord's full reread would."""

from __future__ import annotations

from supervisor.options import ServerOptions

from scs_supervisor import programs
from scs_supervisor.applier import read_group, sync_answer
from scs_supervisor.programs import ProgramSpec, RenderOptions


def test_one_file_reads_as_the_full_reread_does(tmp_path):
    render = RenderOptions(celery_bin='/opt/venv/bin/celery', logs_dir=str(tmp_path))
    specs = [ProgramSpec(name='w1', queues=('a', 'b'), min_concurrency=1, max_concurrency=3,
                         broker_url='redis://:p%40ss@127.0.0.1/0', env=(('X', '50%'),)),
             ProgramSpec(name='w2', queues=('c',), min_concurrency=1, max_concurrency=1,
                         pool='solo', broker_url='amqp://h//', directory=str(tmp_path))]
    programs.write_programs(tmp_path / 'programs', programs.render_programs(specs, render))
    conf = tmp_path / 'supervisord.conf'
    conf.write_text(f'[supervisord]\nlogfile={tmp_path}/s.log\n'
                    f'[include]\nfiles = programs/*.conf\n')
    options = ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)
    full = {group.name: group for group in options.process_group_configs}
    for spec in specs:
        path = tmp_path / 'programs' / programs.program_filename(spec.name)
        group = read_group(options, path)
        assert group == full[programs.group_name(spec.name)]
        assert group.process_configs[0].command == full[group.name].process_configs[0].command


def test_a_sync_that_finds_its_revision_just_applied_reports_what_applied_it():
    nothing = {'added': [], 'changed': [], 'removed': [], 'reconfigured': [], 'errors': {}}
    added = {**nothing, 'added': ['n1']}
    answer, last = sync_answer(added, 7, (None, {}, 0.0), 100.0)  # the loop got there first
    assert answer == added and last == (7, added, 100.0)
    answer, last = sync_answer(nothing, 7, last, 100.01)  # the writer's own sync
    assert answer == added and last == (7, added, 100.0)
    assert sync_answer(nothing, 7, last, 105.0)[0] == nothing  # later: nothing to apply now
    assert sync_answer(nothing, 8, last, 100.02)[0] == nothing  # another revision
