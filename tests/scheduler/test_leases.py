import os
import socket

import pytest
from django.db.models.functions import Now

from scheduler.leases import lease_hold, lease_holder, lease_release
from scheduler.models import Lease

pytestmark = pytest.mark.django_db


def test_the_first_holder_gets_the_lease_and_others_wait():
    assert lease_hold(name="beat", holder="a", ttl=30)
    assert not lease_hold(name="beat", holder="b", ttl=30)
    assert lease_hold(name="beat", holder="a", ttl=30)  # renewing
    assert Lease.objects.get(name="beat").holder == "a"


def test_a_lapsed_lease_is_taken_over():
    assert lease_hold(name="beat", holder="a", ttl=30)
    Lease.objects.filter(name="beat").update(expires_at=Now())
    assert lease_hold(name="beat", holder="b", ttl=30)
    assert not lease_hold(name="beat", holder="a", ttl=30)
    lease = Lease.objects.get(name="beat")
    assert lease.holder == "b"
    assert lease.expires_at > lease.renewed_at


def test_release_lets_the_next_holder_in_at_once():
    assert lease_hold(name="beat", holder="a", ttl=30)
    lease_release(name="beat", holder="a")
    assert lease_hold(name="beat", holder="b", ttl=30)


def test_renewal_keeps_the_acquisition_time_and_takeover_resets_it():
    lease_hold(name="beat", holder="a", ttl=30)
    acquired = Lease.objects.get().acquired_at
    lease_hold(name="beat", holder="a", ttl=30)
    assert Lease.objects.get().acquired_at == acquired
    Lease.objects.update(expires_at=Now())
    lease_hold(name="beat", holder="b", ttl=30)
    assert Lease.objects.get().acquired_at >= acquired


def test_a_holder_names_host_and_pid_and_differs_each_time():
    first, second = lease_holder(), lease_holder()
    host, pid, token = first.rsplit(":", 2)
    assert (host, pid) == (socket.gethostname(), str(os.getpid()))
    assert len(token) == 8 and first != second
