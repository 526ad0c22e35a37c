import pytest

from tests.console.api.helpers import live_campaign
from tests.factories import SfmcActivityFactory


@pytest.fixture
def campaign(db):
    """Live: email + SMS x content / 10 % off x morning / evening, a live random policy."""
    return live_campaign(name="SFMC campaign")


@pytest.fixture
def activity(campaign):
    return SfmcActivityFactory(campaign=campaign)
