import pytest
from django.db.models.functions import Now

from scheduler.leases import lease_hold, lease_release
from scheduler.models import BeatLease

pytestmark = pytest.mark.django_db


def test_the_first_holder_gets_the_lease_and_others_wait():
    assert lease_hold(name="beat", holder="a", ttl=30)
    assert not lease_hold(name="beat", holder="b", ttl=30)
    assert lease_hold(name="beat", holder="a", ttl=30)  # renewing
    assert BeatLease.objects.get(name="beat").holder == "a"


def test_a_lapsed_lease_is_taken_over():
    assert lease_hold(name="beat", holder="a", ttl=30)
    BeatLease.objects.filter(name="beat").update(expires_at=Now())
    assert lease_hold(name="beat", holder="b", ttl=30)
    assert not lease_hold(name="beat", holder="a", ttl=30)
    lease = BeatLease.objects.get(name="beat")
    assert lease.holder == "b"
    assert lease.expires_at > lease.renewed_at


def test_release_lets_the_next_holder_in_at_once():
    assert lease_hold(name="beat", holder="a", ttl=30)
    lease_release(name="beat", holder="a")
    assert lease_hold(name="beat", holder="b", ttl=30)


def test_renewal_keeps_the_acquisition_time_and_takeover_resets_it():
    lease_hold(name="beat", holder="a", ttl=30)
    acquired = BeatLease.objects.get().acquired_at
    lease_hold(name="beat", holder="a", ttl=30)
    assert BeatLease.objects.get().acquired_at == acquired
    BeatLease.objects.update(expires_at=Now())
    lease_hold(name="beat", holder="b", ttl=30)
    assert BeatLease.objects.get().acquired_at >= acquired
