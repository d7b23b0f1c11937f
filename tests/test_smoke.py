def test_token_and_empty_list(client):
    response = client.get("/api/v1/workloads")
    assert response.status_code == 200
    assert response.json() == {"workloads": []}
