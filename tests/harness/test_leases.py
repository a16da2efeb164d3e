import pytest

from mendersim.harness.leases import LeaseBook, NotEnoughDevices

IDS = [f"d{i}" for i in range(10)]


def test_leases_are_disjoint_and_in_store_order():
    book = LeaseBook(IDS)
    a = book.lease("a", 4, {"a", "b"})
    b = book.lease("b", 6, {"a", "b"})
    assert a == IDS[:4]
    assert b == IDS[4:]
    assert not set(a) & set(b)


def test_growing_a_lease_keeps_what_it_holds():
    book = LeaseBook(IDS)
    first = book.lease("a", 3)
    assert book.lease("a", 5)[:3] == first
    assert book.lease("a", 2) == book.leased("a")  # asking for fewer shrinks nothing


def test_restarted_worker_with_same_name_gets_its_devices_back():
    book = LeaseBook(IDS)
    before = book.lease("w1", 4, {"w1"})
    book.lease("w2", 3, {"w1", "w2"})
    assert book.lease("w1", 4, {"w1", "w2"}) == before


def test_new_worker_gets_unleased_devices_first_then_those_of_gone_workers():
    book = LeaseBook(IDS)
    gone = book.lease("gone", 6, {"gone"})
    fresh = book.lease("new", 4, {"new"})
    assert not set(fresh) & set(gone)
    more = book.lease("new", 7, {"new"})  # "gone" is not connected: its lease is reclaimed
    assert set(more) - set(fresh) <= set(gone)
    assert len(set(more)) == 7


def test_too_many_users_is_refused_and_changes_nothing():
    book = LeaseBook(IDS)
    book.lease("a", 6, {"a", "b"})
    with pytest.raises(NotEnoughDevices, match="asked for 11 users but the fleet has 10"):
        book.lease("b", 5, {"a", "b"})
    assert book.leased("b") == []
    assert len(book.lease("b", 4, {"a", "b"})) == 4
