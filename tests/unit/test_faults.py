from supervisor.xmlrpc import Faults as SupervisorFaults

from scs_supervisor.rpcinterface import Faults, ScsFault, xmlrpc_safe


def codes(cls):
    return {name: value for name, value in vars(cls).items() if name.isupper()}


def test_fault_codes_never_collide_with_supervisor():
    ours, theirs = codes(Faults), codes(SupervisorFaults)
    assert ours and theirs
    assert not set(ours.values()) & set(theirs.values())
    assert not set(ours) & set(theirs)
    assert len(set(ours.values())) == len(ours)


def test_fault_text_names_our_fault():
    assert ScsFault(Faults.DATABASE_UNAVAILABLE, 'down').text == 'DATABASE_UNAVAILABLE: down'


def test_xmlrpc_safe_has_no_none():
    assert xmlrpc_safe({'a': None, 'b': [None, 1]}) == {'a': '', 'b': ['', 1]}
