"""Journey Builder retries a call it got no answer to, possibly while the first is still being
decided: on PostgreSQL the retry waits for the first call's commit and answers its branch."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from crm_console.decisioning.models import Decision
from crm_console.sfmc.models import SfmcCall
from tests.conftest import needs_real_stack
from tests.console.api.helpers import customer_with_consent, live_campaign
from tests.console.sfmc.helpers import execute_claims, post_jwt, sign, url
from tests.factories import SfmcActivityFactory


@needs_real_stack
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_make_one_decision_and_share_its_branch():
    campaign = live_campaign(name="SFMC concurrent campaign")
    activity = SfmcActivityFactory(campaign=campaign)
    customer_with_consent("c1")
    token = sign(execute_claims("c1"))
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def call() -> None:
        try:
            start.wait(timeout=30)
            response = post_jwt(Client(), url(activity.campaign_id, "execute"), token)
            with lock:
                answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert [code for code, _ in answers] == [200] * 4
    assert len({body["branchResult"] for _, body in answers}) == 1
    assert Decision.objects.count() == 1
    call_row = SfmcCall.objects.get()
    assert call_row.retries == 3
