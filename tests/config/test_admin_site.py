"""The admin says whose it is: Conveyor's, not "Django administration"."""


def test_the_admin_pages_name_conveyor(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Conveyor administration" in index and "Django administration" not in index
    assert "<title>Site administration | Conveyor admin</title>" in index
