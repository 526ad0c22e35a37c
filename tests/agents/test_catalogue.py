import json

import numpy as np
import pytest

from agents.catalogue import (
    DEFAULT_CHANNELS,
    DEFAULT_OFFERS,
    DEFAULT_SEND_WINDOWS,
    INCENTIVE_KINDS,
    Catalogue,
    CatalogueAction,
    Channel,
    Offer,
    SendWindow,
    default_catalogue,
)

WHATSAPP = Channel("whatsapp", "WhatsApp", 0.03)
FREE_GIFT = Offer("free_gift", "Free gift", "gift", redemption_cost=4.0)
LUNCH = SendWindow("lunch", "Lunch 12:30-13:30", 12.5, 13.5)


def _custom() -> Catalogue:
    return default_catalogue(
        (*DEFAULT_CHANNELS, WHATSAPP), (*DEFAULT_OFFERS, FREE_GIFT), (*DEFAULT_SEND_WINDOWS, LUNCH)
    )


def test_default_catalogue_has_no_contact_plus_every_channel_offer_window():
    catalogue = default_catalogue()
    assert catalogue.n_actions == 1 + 4 * 4 * 3 == 49
    assert catalogue.actions[0].is_no_contact


def test_index_arrays_describe_each_action(catalogue):
    i = catalogue.index_of("sms", "discount_10", "evening")
    assert catalogue.channel_index[i] == catalogue.channel_keys.index("sms")
    assert catalogue.offer_index[i] == catalogue.offer_keys.index("discount_10")
    assert catalogue.window_index[i] == catalogue.window_keys.index("evening")
    assert catalogue.channel_index[0] == catalogue.offer_index[0] == catalogue.window_index[0] == -1
    assert catalogue.cost[0] == 0 and np.all(catalogue.cost[1:] > 0)


def test_label_reads_like_a_marketer_would_write_it(catalogue):
    assert catalogue.label(catalogue.index_of("sms", "discount_10", "evening")) == (
        "SMS - 10 % off - evening"
    )
    assert catalogue.label(0) == "No contact"
    variant = CatalogueAction("email", "content", "morning", 0.05, variant="B")
    assert Catalogue.from_actions([variant]).label(1).endswith("(B)")


def test_custom_channel_offer_and_window_are_worded_by_their_labels():
    catalogue = _custom()
    i = catalogue.index_of("whatsapp", "free_gift", "lunch")
    assert catalogue.label(i) == "WhatsApp - Free gift - Lunch 12:30-13:30"
    assert catalogue.cost[i] == pytest.approx(0.03)
    assert catalogue.n_actions == 1 + 5 * 5 * 4


def test_two_variants_of_one_message_are_two_actions():
    a = CatalogueAction("email", "content", "morning", 0.05, variant="A")
    b = CatalogueAction("email", "content", "morning", 0.05, variant="B")
    catalogue = Catalogue.from_actions([a, b])
    assert catalogue.n_actions == 3
    assert catalogue.index_of("email", "content", "morning", "B") == 2


def test_attributes_describe_channel_incentive_window_and_variant():
    catalogue = Catalogue.from_actions(
        [CatalogueAction("sms", "discount_20", "evening", 0.4, variant="B")]
    )
    row = dict(zip(catalogue.attribute_names, catalogue.attributes[1]))
    assert row["channel=sms"] == 1.0 and row["channel=email"] == 0.0
    assert row["incentive=percent_off"] == 1.0
    assert row["incentive_value"] == pytest.approx(0.20)
    assert row["window_start"] == pytest.approx(18 / 24) and row["window_end"] == pytest.approx(21 / 24)
    assert row["variant=B"] == 1.0 and row["variant=default"] == 0.0
    assert dict(zip(catalogue.attribute_names, catalogue.attributes[0]))["no_contact"] == 1.0
    assert sum(name.startswith("incentive=") for name in catalogue.attribute_names) == len(
        INCENTIVE_KINDS
    )


def test_catalogue_round_trips_through_json():
    catalogue = _custom()
    again = Catalogue.from_dict(json.loads(json.dumps(catalogue.to_dict())))
    assert again == catalogue


def test_from_actions_puts_no_contact_first():
    sms = CatalogueAction("sms", "content", "midday", 0.4)
    catalogue = Catalogue.from_actions([sms])
    assert (
        catalogue.n_actions == 2
        and catalogue.actions[0].is_no_contact
        and catalogue.actions[1] == sms
    )


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (CatalogueAction("fax", "content", "morning"), "unknown channel"),
        (CatalogueAction("email", "bogof", "morning"), "unknown offer"),
        (CatalogueAction("email", "content", "night"), "unknown send window"),
    ],
)
def test_action_outside_the_catalogues_vocabulary_is_rejected(action, match):
    with pytest.raises(ValueError, match=match):
        Catalogue.from_actions([action])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channel": "email", "offer": None, "send_window": "morning"}, "all set or all None"),
        ({"channel": "email", "offer": "content", "send_window": "morning", "cost": -1.0}, "cost"),
        ({"channel": "email", "offer": "content", "send_window": "morning", "variant": ""},
         "variant"),
    ],
)
def test_bad_action_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CatalogueAction(**kwargs)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Channel("Whats App", "WhatsApp"), "key must be"),
        (lambda: Channel("whatsapp", " "), "needs a label"),
        (lambda: Channel("whatsapp", "WhatsApp", -0.1), "cost"),
        (lambda: Offer("big", "Big", "percent_off", 120.0), r"\(0, 100\]"),
        (lambda: Offer("neg", "Neg", "amount_off", -5.0), "finite number >= 0"),
        (lambda: Offer("pts", "Points", "points_multiplier", 1.0), "multiplier must be > 1"),
        (lambda: Offer("odd", "Odd", "bogof"), "kind must be one of"),
        (lambda: Offer("short", "Short", validity_days=0), "validity_days"),
        (lambda: SendWindow("late", "Late", 14.0, 13.0), "end must be after the start"),
        (lambda: SendWindow("empty", "Empty", 13.0, 13.0), "end must be after the start"),
        (lambda: SendWindow("never", "Never", 8.0, 9.0, days=()), "days must be weekdays"),
        (lambda: SendWindow("long", "Long", 8.0, 25.0), r"\[0, 24\]"),
    ],
)
def test_bad_vocabulary_record_is_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_duplicate_channel_keys_are_rejected():
    with pytest.raises(ValueError, match="same channel key twice"):
        default_catalogue((*DEFAULT_CHANNELS, Channel("email", "Email again")))


def test_catalogue_without_no_contact_first_is_rejected():
    sms = CatalogueAction("sms", "content", "midday", 0.4)
    with pytest.raises(ValueError, match="action 0 must be 'no contact'"):
        Catalogue((sms,))


def test_duplicate_actions_are_rejected():
    sms = CatalogueAction("sms", "content", "midday", 0.4)
    with pytest.raises(ValueError, match="same action twice"):
        Catalogue.from_actions([sms, sms])


def test_one_message_at_two_prices_is_the_same_action_twice():
    with pytest.raises(ValueError, match="same action twice"):
        Catalogue.from_actions([CatalogueAction("sms", "content", "midday", 0.4),
                                CatalogueAction("sms", "content", "midday", 0.5)])


def test_index_of_unknown_action_raises(catalogue):
    with pytest.raises(ValueError, match="no action"):
        catalogue.index_of("email", "content", "morning", variant="missing")
