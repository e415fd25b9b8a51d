"""The fakes refuse what the real APIs refuse (tests/fakes/LIMITS.md), through the real client libraries."""

from __future__ import annotations

import json

import pytest
import requests

from tests.fakes.hubspot import ALL_SCOPES, FakeHubSpot
from tests.fakes.salesforce import FakeSalesforce


@pytest.fixture
def hubspot():
    with FakeHubSpot() as fake:
        for i in range(60):
            fake.insert("companies", str(1000 + i), {"name": f"Co {i}"})
        yield fake


def call(fake: FakeHubSpot, method: str, path: str, body: dict | None = None, **params) -> requests.Response:
    return requests.request(method, fake.url + path, json=body, params=params, timeout=5,
                            headers={"Authorization": f"Bearer {fake.token}"})


def test_hubspot_batch_read_caps(hubspot):
    inputs = [{"id": str(1000 + i)} for i in range(60)]
    history = call(hubspot, "POST", "/crm/v3/objects/companies/batch/read",
                   {"inputs": inputs, "properties": ["name"], "propertiesWithHistory": ["name"]})
    assert history.status_code == 400 and "property histories is 50" in history.json()["message"]
    plain = call(hubspot, "POST", "/crm/v3/objects/companies/batch/read", {"inputs": inputs * 2})
    assert plain.status_code == 400 and plain.json()["category"] == "VALIDATION_ERROR"
    ok = call(hubspot, "POST", "/crm/v3/objects/companies/batch/read", {"inputs": inputs[:50],
              "propertiesWithHistory": ["name"]})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 50
    many = call(hubspot, "POST", "/crm/v4/associations/contacts/companies/batch/read",
                {"inputs": [{"id": str(i)} for i in range(1001)]})
    assert many.status_code == 400


def test_hubspot_search_caps(hubspot):
    search = "/crm/v3/objects/companies/search"
    assert call(hubspot, "POST", search, {"limit": 201}).status_code == 400
    assert call(hubspot, "POST", search, {"limit": 100, "after": "9950"}).status_code == 400  # past 10,000
    groups = [{"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}] * 6
    assert call(hubspot, "POST", search, {"filterGroups": groups}).status_code == 400
    page = call(hubspot, "POST", search, {"limit": 200})
    assert page.status_code == 200 and page.json()["total"] == 60 and "paging" not in page.json()
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in page.headers)  # search: none


def test_hubspot_rate_limit_headers_on_normal_responses(hubspot):
    page = call(hubspot, "GET", "/crm/v3/objects/companies", limit=100)
    for name in ("Daily", "Daily-Remaining", "Interval-Milliseconds", "Max", "Remaining"):
        assert f"X-HubSpot-RateLimit-{name}" in page.headers
    assert len(page.json()["results"]) == 60 and "paging" not in page.json()  # last page: no paging


def test_hubspot_event_types_live_in_their_own_api_and_entitlements_answer_403():
    with FakeHubSpot(enterprise=False, scopes=ALL_SCOPES - {"content"}) as fake:
        events = call(fake, "GET", "/events/v3/events", objectType="contact", eventType="e_visited_page")
        assert events.status_code == 403
        email = call(fake, "GET", "/email/public/v1/events", eventType="OPEN", limit=1000)
        assert email.status_code == 403 and email.json()["category"] == "MISSING_SCOPES"
    with FakeHubSpot() as fake:
        assert call(fake, "GET", "/events/v3/events", eventType="e_opened_email").status_code == 400
        assert call(fake, "GET", "/email/public/v1/events", eventType="OPEN", limit=1001).status_code == 400
        assert call(fake, "GET", "/email/public/v1/events", eventType="e_opened_email").status_code == 400
        assert call(fake, "GET", "/email/public/v1/events", eventType="CLICK", limit=1000).json() == {
            "events": [], "hasMore": False, "offset": None}


def test_salesforce_error_bodies_are_json_lists_and_limit_info_rides_on_every_response():
    with FakeSalesforce() as fake:
        session = fake.session()
        base = "https://instance/services/data/v59.0"
        headers = {"Authorization": f"Bearer {fake.token}"}
        bad = session.get(f"{base}/query/", params={"q": "SELEKT Id"}, headers=headers)
        assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "MALFORMED_QUERY"
        assert bad.headers["Sforce-Limit-Info"].startswith("api-usage=")
        expired = session.get(f"{base}/query/", params={"q": "SELECT Id FROM Account"},
                              headers={"Authorization": "Bearer nope"})
        assert expired.status_code == 401 and expired.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        fake.request_limit_exceeded = True
        refused = session.get(f"{base}/limits/", headers=headers)
        assert refused.status_code == 403 and refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_salesforce_bulk_results_before_completion_are_412():
    with FakeSalesforce(bulk_polls=5) as fake:
        fake.insert("Account", {"Name": "A"})
        session = fake.session()
        base = "https://instance/services/data/v59.0/jobs/query"
        headers = {"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json"}
        job = session.post(base, data=json.dumps({"operation": "queryAll", "query": "SELECT Id FROM Account"}),
                           headers=headers).json()
        early = session.get(f"{base}/{job['id']}/results", headers=headers)
        assert early.status_code == 412 and early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"


def _token(session: requests.Session, host: str, **form: str) -> requests.Response:
    return session.post(f"https://{host}/services/oauth2/token", data=form)


def test_salesforce_rotates_refresh_tokens_and_refuses_a_used_one():
    with FakeSalesforce() as fake:
        fake.rotate_refresh_tokens = True
        fake.refresh_tokens["rt-1"] = "KEY"
        session = fake.session()
        form = {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "KEY"}
        first = _token(session, "login.salesforce.com", **form)
        assert first.status_code == 200 and first.json()["refresh_token"] != "rt-1"
        again = _token(session, "login.salesforce.com", **form)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_salesforce_jwt_audience_must_be_login_test_or_a_site_and_client_credentials_need_a_my_domain():
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with FakeSalesforce() as fake:
        fake.jwt_apps["KEY"] = "rev@acme.io"
        session = fake.session()
        grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
        for audience, status in (("https://login.salesforce.com", 200), ("https://test.salesforce.com", 200),
                                 ("https://acme.my.salesforce.com", 400)):
            assertion = jwt.encode({"iss": "KEY", "sub": "rev@acme.io", "aud": audience, "exp": 9999999999}, key,
                                   algorithm="RS256")
            answer = _token(session, "acme.my.salesforce.com", grant_type=grant, assertion=assertion)
            assert answer.status_code == status, audience
        assert answer.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}

        fake.client_credentials["KEY"] = "secret"
        basic = {"Authorization": "Basic S0VZOnNlY3JldA=="}  # KEY:secret
        shared = session.post("https://login.salesforce.com/services/oauth2/token",
                              data={"grant_type": "client_credentials"}, headers=basic)
        own = session.post("https://acme.my.salesforce.com/services/oauth2/token",
                           data={"grant_type": "client_credentials"}, headers=basic)
        assert shared.status_code == 400 and own.status_code == 200
        assert fake.token_hosts[-2:] == ["login.salesforce.com", "acme.my.salesforce.com"]


def test_salesforce_soap_login_is_gone_from_api_65():
    with FakeSalesforce() as fake:
        fake.logins["rev@acme.io"] = ("pw", "")
        session = fake.session()
        body = ("<n1:login><n1:username>rev@acme.io</n1:username><n1:password>pw</n1:password></n1:login>")
        assert session.post("https://login.salesforce.com/services/Soap/u/64.0", data=body).status_code == 200
        gone = session.post("https://login.salesforce.com/services/Soap/u/65.0", data=body)
        assert gone.status_code == 500 and "UNSUPPORTED_API_VERSION" in gone.text


def test_salesforce_describe_lists_the_orgs_fields_and_a_vanilla_org_refuses_custom_ones():
    with FakeSalesforce(custom_fields=False, currencies={"EUR": 1.0, "USD": 1.2}) as fake:
        session = fake.session()
        base = "https://instance/services/data/v59.0"
        headers = {"Authorization": f"Bearer {fake.token}"}
        described = session.get(f"{base}/sobjects/Account/describe", headers=headers).json()
        fields = {f["name"]: f for f in described["fields"]}
        assert "Tier__c" not in fields and "CurrencyIsoCode" in fields
        assert fields["OwnerId"]["relationshipName"] == "Owner"
        refused = session.get(f"{base}/query/", params={"q": "SELECT Id, Tier__c FROM Account"}, headers=headers)
        assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD"
        assert "No such column 'Tier__c' on entity 'Account'" in refused.json()[0]["message"]
        rates = session.get(f"{base}/query/", params={"q": "SELECT IsoCode, IsCorporate FROM CurrencyType"},
                            headers=headers).json()["records"]
        assert [(r["IsoCode"], r["IsCorporate"]) for r in rates] == [("EUR", True), ("USD", False)]
    with FakeSalesforce() as single:
        answer = single.session().get("https://instance/services/data/v59.0/query/",
                                      params={"q": "SELECT IsoCode FROM CurrencyType"},
                                      headers={"Authorization": f"Bearer {single.token}"})
        assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "INVALID_TYPE"
