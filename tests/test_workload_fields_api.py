"""``GET /api/v1/workload-fields`` serves the catalogue's queryable rows."""

from __future__ import annotations

from gpufleet.core.workload_fields import QUERY_FIELDS
from gpufleet.schemas.enums import Phase


def test_the_fields_are_the_sort_enum_with_their_operators(client):
    answer = client.get("/api/v1/workload-fields")
    assert answer.status_code == 200
    fields = answer.json()["fields"]
    assert [f["name"] for f in fields] == [f.name for f in QUERY_FIELDS]
    by_name = {f["name"]: f for f in fields}
    assert by_name["name"]["operators"] == ["==", "!=", "<=", ">=", "=@", "!@", "=^", "=$"]
    assert by_name["createdAt"] == {
        "name": "createdAt",
        "kind": "date",
        "operators": ["==", "!=", "<=", ">="],
        "sortable": True,
    }


def test_a_field_with_a_fixed_set_of_values_lists_them(client):
    by_name = {f["name"]: f for f in client.get("/api/v1/workload-fields").json()["fields"]}
    phases = [phase.value for phase in Phase]  # the reference's enum, in its order
    assert by_name["phase"]["values"] == phases
    assert "values" not in by_name["name"]
    assert [name for name, f in by_name.items() if "values" in f] == ["phase"]
    for phase in phases:
        answer = client.get("/api/v1/workloads/count", params={"filterBy": f"phase=={phase}"})
        assert answer.status_code == 200, (phase, answer.text)


def test_every_offered_operator_is_accepted_by_filter_by(client):
    for field in client.get("/api/v1/workload-fields").json()["fields"]:
        value = {"date": "2026-01-01T00:00:00Z", "text": "Running"}.get(field["kind"], "1")
        for operator in field["operators"]:
            term = f"{field['name']}{operator}{value}"
            answer = client.get("/api/v1/workloads/count", params={"filterBy": term})
            assert answer.status_code == 200, (term, answer.text)


def test_the_fields_need_a_token(anonymous_client):
    assert anonymous_client.get("/api/v1/workload-fields").status_code == 401
