import pytest

from messaging import services


@pytest.fixture
def conversation(patient, team):
    """An open conversation between ``patient`` and ``team``, started by the patient."""
    return services.start_conversation(
        author=patient.user,
        patient=patient,
        team=team,
        subject="Douleur au genou",
        kind="question",
        body="Bonjour docteur, j'ai mal au genou depuis une semaine.",
    )
