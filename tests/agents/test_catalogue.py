import numpy as np
import pytest

from agents.catalogue import (
    CHANNELS,
    OFFERS,
    SEND_WINDOWS,
    Catalogue,
    CatalogueAction,
    default_catalogue,
)


def test_default_catalogue_has_no_contact_plus_every_channel_offer_window():
    catalogue = default_catalogue()
    assert catalogue.n_actions == 1 + len(CHANNELS) * len(OFFERS) * len(SEND_WINDOWS) == 49
    assert catalogue.actions[0].is_no_contact


def test_index_arrays_describe_each_action(catalogue):
    i = catalogue.index_of("sms", "discount_10", "evening")
    assert catalogue.channel_index[i] == CHANNELS.index("sms")
    assert catalogue.offer_index[i] == OFFERS.index("discount_10")
    assert catalogue.window_index[i] == list(SEND_WINDOWS).index("evening")
    assert catalogue.channel_index[0] == catalogue.offer_index[0] == catalogue.window_index[0] == -1
    assert catalogue.cost[0] == 0 and np.all(catalogue.cost[1:] > 0)


def test_label_reads_like_a_marketer_would_write_it(catalogue):
    assert (
        catalogue.actions[catalogue.index_of("sms", "discount_10", "evening")].label
        == "SMS - 10 % off - evening"
    )
    assert catalogue.actions[0].label == "No contact"
    variant = CatalogueAction("email", "content", "morning", 0.05, variant="B")
    assert variant.label.endswith("(B)")


def test_from_actions_puts_no_contact_first():
    sms = CatalogueAction("sms", "content", "midday", 0.4)
    catalogue = Catalogue.from_actions([sms])
    assert (
        catalogue.n_actions == 2
        and catalogue.actions[0].is_no_contact
        and catalogue.actions[1] == sms
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channel": "fax", "offer": "content", "send_window": "morning"}, "unknown channel"),
        ({"channel": "email", "offer": "bogof", "send_window": "morning"}, "unknown offer"),
        ({"channel": "email", "offer": "content", "send_window": "night"}, "unknown send window"),
        ({"channel": "email", "offer": None, "send_window": "morning"}, "all set or all None"),
        ({"channel": "email", "offer": "content", "send_window": "morning", "cost": -1.0}, "cost"),
    ],
)
def test_bad_action_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CatalogueAction(**kwargs)


def test_catalogue_without_no_contact_first_is_rejected():
    sms = CatalogueAction("sms", "content", "midday", 0.4)
    with pytest.raises(ValueError, match="action 0 must be 'no contact'"):
        Catalogue((sms,))


def test_duplicate_actions_are_rejected():
    sms = CatalogueAction("sms", "content", "midday", 0.4)
    with pytest.raises(ValueError, match="same action twice"):
        Catalogue.from_actions([sms, sms])


def test_index_of_unknown_action_raises(catalogue):
    with pytest.raises(ValueError, match="no action"):
        catalogue.index_of("email", "content", "morning", variant="missing")
