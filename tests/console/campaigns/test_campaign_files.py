"""Campaign files: export, import, round trips and refusals (docs/campaign-file.md)."""

from __future__ import annotations

import copy
import io
import json
from datetime import time
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from crm_console.campaigns import services
from crm_console.campaigns.campaign_files import (
    CampaignFileError, campaign_document, campaign_import,
)
from crm_console.campaigns.models import (
    Action, Campaign, Channel, ContactPolicy, Offer, SendWindow,
)
from crm_console.compliance.models import AuditEntry
from tests.console.api.helpers import live_campaign

pytestmark = pytest.mark.django_db


def _custom_campaign() -> Campaign:
    services.channel_create(key="whatsapp", label="WhatsApp", cost=Decimal("0.03"),
                            consent_key="phone", quiet_hours_apply=False)
    services.offer_create(key="free_gift", label="Free gift", kind="gift",
                          redemption_cost=Decimal("4.00"), validity_days=14,
                          description="A tote bag with the next order")
    services.send_window_create(key="lunch", label="Lunch 12:30-13:30", start=time(12, 30),
                                end=time(13, 30), days=[0, 1, 2, 3, 4])
    campaign = live_campaign(name="Lunch gifts", quiet_hours=(21, 8), min_gap_hours="24")
    services.catalogue_generate(campaign=campaign, channels=["email", "sms", "whatsapp"],
                                offers=["free_gift"], send_windows=["lunch"])
    services.action_create(campaign=campaign, channel="email", offer="free_gift",
                           send_window="lunch", variant="B", cost=Decimal("0.06"))
    services.action_update(action=campaign.actions.get(channel="sms", offer="free_gift"),
                           enabled=False)
    services.reward_weights_update(campaign=campaign, churn=-80.0, open=0.5)
    return campaign


def _renamed(document: dict, name: str) -> dict:
    renamed = copy.deepcopy(document)
    renamed["campaign"]["name"] = name
    return renamed


def _counts() -> tuple[int, ...]:
    return (Campaign.objects.count(), Action.objects.count(), Offer.objects.count(),
            SendWindow.objects.count(), ContactPolicy.objects.count(), AuditEntry.objects.count())


@pytest.mark.parametrize("make", [lambda: live_campaign(name="Demo-like"), _custom_campaign],
                         ids=["demo-like", "custom"])
def test_an_exported_campaign_imports_to_an_equal_campaign(make):
    document = json.loads(json.dumps(campaign_document(campaign=make())))
    result = campaign_import(_renamed(document, "Copy"))
    again = campaign_document(campaign=result.campaign)
    assert again["campaign"].pop("name") == "Copy"
    document["campaign"].pop("name")
    for part in document:  # field by field, so a failure names the part that differs
        assert again[part] == document[part], part


def test_the_custom_campaign_file_holds_its_own_vocabulary():
    document = campaign_document(campaign=_custom_campaign())
    assert {o["key"] for o in document["offers"]} == {"content", "discount_10", "free_gift"}
    lunch = next(w for w in document["send_windows"] if w["key"] == "lunch")
    assert lunch == {"key": "lunch", "label": "Lunch 12:30-13:30", "start": "12:30",
                     "end": "13:30", "days": [0, 1, 2, 3, 4], "enabled": True}
    assert {"channel": "email", "offer": "free_gift", "send_window": "lunch", "variant": "B",
            "cost": 0.06, "enabled": True} in document["actions"]
    assert document["reward_weights"]["churn"] == -80.0
    assert document["channels"][-1] == {
        "key": "whatsapp", "label": "WhatsApp", "cost": 0.03, "consent_key": "phone",
        "quiet_hours_apply": False, "counts_toward_overall_cap": True, "enabled": True}


def test_a_file_brings_its_own_channel_into_a_workspace_without_it():
    document = json.loads(json.dumps(campaign_document(campaign=_custom_campaign())))
    Campaign.objects.filter(name="Lunch gifts").delete()
    services.channel_delete(channel=Channel.objects.get(key="whatsapp"))
    result = campaign_import(document)
    whatsapp = Channel.objects.get(key="whatsapp")
    assert (whatsapp.cost, whatsapp.consent, whatsapp.quiet_hours_apply) == (
        Decimal("0.03"), "phone", False)
    assert result.campaign.actions.filter(channel="whatsapp").count() == 1


def test_importing_the_same_file_twice_changes_nothing():
    document = campaign_document(campaign=_custom_campaign())
    first = campaign_import(_renamed(document, "Copy"))
    assert first.changed
    before = _counts()
    second = campaign_import(_renamed(document, "Copy"))
    assert not second.changed and second.campaign == first.campaign
    assert _counts() == before


def test_update_brings_an_existing_campaign_in_line():
    campaign = _custom_campaign()
    document = campaign_document(campaign=campaign)
    document["campaign"]["holdout_share"] = 0.2
    document["actions"] = [a for a in document["actions"] if a["offer"] != "discount_10"]
    document["offers"][2]["label"] = "Free tote bag"
    with pytest.raises(CampaignFileError) as refused:
        campaign_import(document)
    assert "--update" in " ".join(refused.value.errors["campaign"])
    result = campaign_import(document, update=True)
    campaign.refresh_from_db()
    assert campaign.holdout_share == Decimal("0.20")
    assert not campaign.actions.filter(offer="discount_10", enabled=True).exists()
    assert Offer.objects.get(key="free_gift").label == "Free tote bag"
    assert result.updated
    exported = campaign_document(campaign=campaign)["actions"]
    assert all(action in exported for action in document["actions"])


@pytest.mark.parametrize(("change", "path", "message"), [
    (lambda d: d["campaign"].update(colour="red"), "campaign.colour", "Unknown field"),
    (lambda d: d.update(schema_version=2), "schema_version", "Unknown schema version 2"),
    (lambda d: d["campaign"].update(retention_guardrail_points=150),
     "campaign.retention_guardrail_points", "less than or equal to 100"),
    (lambda d: d["actions"][0].update(cost="cheap"), "actions[0].cost", "valid number"),
    (lambda d: d["offers"].append({"key": "big", "label": "Big", "kind": "percent_off",
                                   "value": 150, "redemption_cost": 0, "validity_days": 7}),
     "offers[2].value", "between 0 and 100"),
    (lambda d: d["actions"].append({"channel": "email", "offer": "bogof",
                                    "send_window": "morning", "cost": 0.05}),
     "actions[8].offer", "no offer 'bogof'"),
    (lambda d: d["channels"].append({"key": "fax", "label": "Fax", "cost": -1}),
     "channels[2].cost", "greater than or equal to 0"),
    (lambda d: d["actions"].append({"channel": "fax", "offer": "content",
                                    "send_window": "morning", "cost": 0.05}),
     "actions[8].channel", "Unknown channel 'fax'"),
    (lambda d: d["send_windows"].append({"key": "late", "label": "Late", "start": "14:00",
                                         "end": "13:00"}),
     "send_windows[2].end", "end after it starts"),
    (lambda d: d["contact_policy"].update(overall_window_days="a week"),
     "contact_policy.overall_window_days", "valid integer"),
])
def test_a_bad_campaign_file_names_each_error_by_its_path_and_writes_nothing(change, path,
                                                                            message):
    document = _renamed(campaign_document(campaign=live_campaign(name="Spring")), "Autumn")
    document["contact_policy"]["name"] = "Autumn policy"
    change(document)
    before = _counts()
    with pytest.raises(CampaignFileError) as refused:
        campaign_import(document)
    assert message in " ".join(refused.value.errors.get(path, [])), refused.value.errors
    assert _counts() == before


def test_a_retention_guardrail_travels_with_the_file_and_an_older_file_has_none():
    campaign = live_campaign(name="Guarded")
    campaign.retention_guardrail_points = Decimal("1.5")
    campaign.save()
    document = _renamed(campaign_document(campaign=campaign), "Guarded copy")
    document["contact_policy"]["name"] = "Guarded copy policy"
    older = _renamed(campaign_document(campaign=campaign), "Older copy")
    older["contact_policy"]["name"] = "Older copy policy"
    del older["campaign"]["retention_guardrail_points"]

    assert document["campaign"]["retention_guardrail_points"] == 1.5
    assert campaign_import(document).campaign.retention_guardrail_points == Decimal("1.5")
    assert campaign_import(older).campaign.retention_guardrail_points is None


def test_the_commands_export_and_import_a_file(tmp_path):
    campaign = _custom_campaign()
    out = io.StringIO()
    call_command("campaign_export", "--campaign", str(campaign.pk), stdout=out)
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(_renamed(json.loads(out.getvalue()), "From file")))
    said = io.StringIO()
    call_command("campaign_import", str(path), stdout=said)
    assert "created" in said.getvalue()
    assert Campaign.objects.filter(name="From file").exists()
    said = io.StringIO()
    call_command("campaign_import", str(path), stdout=said)
    assert "unchanged" in said.getvalue()


def test_the_import_command_lists_every_error_and_imports_nothing(tmp_path):
    document = _renamed(campaign_document(campaign=live_campaign(name="Spring")), "Autumn")
    document["campaign"]["horizon_days"] = "long"
    document["actions"][0]["colour"] = "red"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError) as refused:
        call_command("campaign_import", str(path))
    assert "campaign.horizon_days" in str(refused.value)
    assert "actions[0].colour" in str(refused.value)
    assert not Campaign.objects.filter(name="Autumn").exists()


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("campaign_import", str(path))


# ----------------------------------------------------------------------------- console
def test_the_campaign_page_downloads_its_file(marketer_client):
    campaign = _custom_campaign()
    response = marketer_client.get(f"/campaigns/{campaign.pk}/campaign-file/")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert response.json() == json.loads(json.dumps(campaign_document(campaign=campaign)))


def test_a_marketer_imports_a_campaign_file_in_the_console(marketer_client):
    document = _renamed(campaign_document(campaign=_custom_campaign()), "Uploaded")
    upload = SimpleUploadedFile("c.json", json.dumps(document).encode(), "application/json")
    response = marketer_client.post("/campaigns/import/", {"file": upload})
    campaign = Campaign.objects.get(name="Uploaded")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"


def test_a_bad_upload_lists_each_error_by_path_and_imports_nothing(marketer_client):
    document = _renamed(campaign_document(campaign=live_campaign(name="Spring")), "Uploaded")
    document["offers"][0]["kind"] = "bogof"
    upload = SimpleUploadedFile("c.json", json.dumps(document).encode(), "application/json")
    response = marketer_client.post("/campaigns/import/", {"file": upload})
    assert response.status_code == 200
    assert "offers[0].kind" in response.context["errors"]
    assert b"Nothing imported" in response.content
    assert not Campaign.objects.filter(name="Uploaded").exists()


def test_a_reviewer_cannot_import_a_campaign(reviewer_client):
    assert reviewer_client.get("/campaigns/import/").status_code == 403


def test_the_documented_example_imports_as_written():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "campaign-file.md").read_text()
    example = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
    result = campaign_import(example)
    assert result.campaign.actions.filter(channel="whatsapp").exists()
    assert Channel.objects.get(key="whatsapp").cost == Decimal("0.03")
    cap = result.campaign.contact_policy.channel_caps.get(channel="whatsapp")
    assert (cap.max_contacts, cap.min_gap_hours) == (2, Decimal("48"))
