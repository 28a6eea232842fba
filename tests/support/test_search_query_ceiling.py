"""The support console's search reads a fixed number of queries, whatever the number of
accounts and records it finds."""

import pytest
from django.urls import reverse

from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("size", [1, 30])
def test_the_account_search_has_a_ceiling(client, login, support, size, django_assert_max_num_queries):
    for n in range(size):
        UserFactory(first_name=f"Camille{n}", last_name="Durand")
        PatientFactory(user=None, first_name=f"Camille{n}", last_name="Dubois")
    login(support)
    client.post(reverse("support:home"), {"q": "camille"})
    client.get(reverse("support:home"))
    # The session, its user and second factor; the request's transaction (opened, closed),
    # the accounts (counted, then a page), the open requests, the records without a login,
    # the found accounts' records, and the access log's one insert of every identity shown
    # (in a savepoint, with its lock and the chain's last links: 6 statements).
    with django_assert_max_num_queries(15):
        response = client.get(reverse("support:home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count(">Camille") >= min(size, 25) * 2
