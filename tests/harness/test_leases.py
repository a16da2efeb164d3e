import pytest

from mendersim.harness.coordination.leases import LeaseBook, NotEnoughDevices

IDS = [f"d{i}" for i in range(10)]


def test_leases_are_disjoint_and_in_store_order():
    book = LeaseBook(IDS)
    a = book.lease("a", 4, {"a", "b"})
    b = book.lease("b", 6, {"a", "b"})
    assert a == IDS[:4]
    assert b == IDS[4:]
    assert book.lease("a", 0, {"a", "b"}) == []


def test_more_devices_extend_the_lease():
    book = LeaseBook(IDS)
    first = book.lease("a", 3)
    second = book.lease("a", 2)
    assert book.leased("a") == first + second
    assert not set(first) & set(second)


def test_restarted_worker_with_same_name_gets_its_devices_back():
    book = LeaseBook(IDS)
    before = book.lease("w1", 4, {"w1"})
    book.lease("w2", 3, {"w1", "w2"})
    assert book.lease("w1", 4, {"w1", "w2"}, restart=True) == before


def test_given_back_devices_go_to_whoever_needs_them():
    book = LeaseBook(IDS)
    a = book.lease("a", 10, {"a", "b"})
    book.give_back("a", a[5:])
    assert sorted(book.lease("b", 5, {"a", "b"})) == sorted(a[5:])
    assert book.lease("a", 0, {"a", "b"}) == []
    with pytest.raises(NotEnoughDevices):
        book.lease("a", 1, {"a", "b"})


def test_gone_workers_leases_are_reclaimed_after_free_devices():
    book = LeaseBook(IDS)
    gone = book.lease("gone", 6, {"gone"})
    fresh = book.lease("new", 4, {"new"})
    assert not set(fresh) & set(gone)
    more = book.lease("new", 3, {"new"})  # "gone" is not connected: its lease is reclaimed
    assert set(more) <= set(gone)
    assert len(set(fresh + more)) == 7


def test_devices_a_restarted_worker_has_not_asked_back_may_go_elsewhere():
    book = LeaseBook(IDS)
    book.lease("a", 6, {"a", "b"})
    book.lease("a", 2, {"a", "b"}, restart=True)  # the new process holds 2 of its 6
    assert len(book.lease("b", 8, {"a", "b"})) == 8  # 4 free + the 4 a does not hold


def test_too_many_users_is_refused_and_changes_nothing():
    book = LeaseBook(IDS)
    book.lease("a", 6, {"a", "b"})
    with pytest.raises(NotEnoughDevices, match="asked for 11 users but the fleet has 10"):
        book.lease("b", 5, {"a", "b"})
    assert book.leased("b") == []
    assert len(book.lease("b", 4, {"a", "b"})) == 4
