"""The Agenda: which resources a client round looks at."""

from __future__ import annotations

from sip_gateway.client.agenda import Agenda


def test_marked_resources_come_once_each_in_the_order_marked():
    agenda = Agenda()
    for resource in ("b", "a", "b", "c"):
        agenda.mark(resource)
    assert agenda.due(0.0) == ["b", "a", "c"]
    assert agenda.due(0.0) == []


def test_a_time_comes_when_it_is_due_and_the_earliest_asked_wins():
    agenda = Agenda()
    agenda.at("a", 10.0)
    agenda.at("a", 5.0)  # earlier: replaces
    agenda.at("a", 7.0)  # later: ignored while 5.0 stands
    agenda.at("b", 6.0)
    assert agenda.due(4.9) == []
    assert agenda.due(5.0) == ["a"]
    assert agenda.due(9.9) == ["b"]  # the superseded 10.0 entry of "a" never comes
    assert agenda.due(100.0) == []


def test_wait_is_zero_with_work_ready_else_until_the_next_time_capped():
    agenda = Agenda()
    assert agenda.wait(0.0, 1.0) == 1.0
    agenda.at("a", 0.25)
    assert agenda.wait(0.0, 1.0) == 0.25
    assert agenda.wait(0.5, 1.0) == 0.0
    agenda.mark("b")
    assert agenda.wait(0.0, 1.0) == 0.0
