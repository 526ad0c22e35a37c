"""The history upload page: admins only; the import runs as a Celery task the page polls."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm_console.decisioning.models import Decision, HistoryImport
from tests.console.decisioning.history_files import (
    contact, days_ago, history_campaign, identify, jsonl, standard_history,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, campaign, events, contacts=None):
    data = {"campaign": campaign.pk,
            "events": SimpleUploadedFile("events.jsonl", events.read_bytes())}
    if contacts is not None:
        data["contacts"] = SimpleUploadedFile("contacts.jsonl", contacts.read_bytes())
    return client.post("/decisions/import/", data)


def upload_and_run(client, campaign, events, contacts, capture):
    """Upload, then run the queued task here (on the embedded default it runs in a thread)."""
    from crm_console.decisioning.history_import import history_import_run

    with capture(execute=False) as callbacks:
        response = upload(client, campaign, events, contacts)
    assert len(callbacks) == 1
    history_import_run(history_import_id=HistoryImport.objects.get().pk)
    return response


def test_an_admin_uploads_and_the_task_imports(admin_client_role, tmp_path, django_capture_on_commit_callbacks):
    campaign = history_campaign()
    events, contacts = standard_history(tmp_path)

    response = upload_and_run(admin_client_role, campaign, events, contacts,
                              django_capture_on_commit_callbacks)

    record = HistoryImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/decisions/import/{record.pk}/"
    assert record.status == HistoryImport.Status.SUCCEEDED
    assert record.report["contacts_imported"] == 4
    assert Decision.objects.filter(campaign=campaign).count() == 4


def test_the_uploaded_files_are_deleted_once_imported(admin_client_role, tmp_path,
                                                      django_capture_on_commit_callbacks):
    from pathlib import Path

    campaign = history_campaign()
    events, contacts = standard_history(tmp_path)
    upload_and_run(admin_client_role, campaign, events, contacts,
                   django_capture_on_commit_callbacks)

    record = HistoryImport.objects.get()
    assert not Path(record.events_path).exists() and not Path(record.contacts_path).exists()


def test_the_page_shows_refused_rows(admin_client_role, tmp_path, django_capture_on_commit_callbacks):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])
    contacts = jsonl(tmp_path / "contacts.jsonl", [contact("c-1", "nobody", days_ago(2))])
    upload_and_run(admin_client_role, campaign, events, contacts,
                   django_capture_on_commit_callbacks)

    page = admin_client_role.get(f"/decisions/import/{HistoryImport.objects.get().pk}/")

    html = page.content.decode()
    assert 'id="refused-rows"' in html
    assert "Unknown customer &#x27;nobody&#x27;" in html


def test_progress_is_polled_until_the_import_is_finished(admin_client_role):
    record = HistoryImport.objects.create(campaign=history_campaign(), events_path="x",
                                          status=HistoryImport.Status.RUNNING, phase="events",
                                          lines_processed=5000)

    fragment = admin_client_role.get(f"/decisions/import/{record.pk}/progress/").content.decode()

    assert "hx-trigger=\"every 1s\"" in fragment and "events: 5000 lines processed" in fragment


def test_a_marketer_cannot_open_or_post_the_upload_page(marketer_client, tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])

    assert marketer_client.get("/decisions/import/").status_code == 403
    assert upload(marketer_client, campaign, events).status_code == 403
    assert not HistoryImport.objects.exists()


def test_the_upload_page_lists_the_form_for_an_admin(admin_client_role):
    history_campaign()

    response = admin_client_role.get("/decisions/import/")

    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.content.decode()
