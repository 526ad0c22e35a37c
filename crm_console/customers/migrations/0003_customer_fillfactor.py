"""Leave room in each customers page (PostgreSQL fillfactor 70): every decision and event batch
rewrites its customers' profiles, and with free space on the page PostgreSQL updates the row in
place (a HOT update) instead of adding an entry to each of the table's indexes."""

from django.db import migrations


def fillfactor(percent: int):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(apps.get_model("customers", "Customer")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")
    return apply


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_initial")]

    operations = [migrations.RunPython(fillfactor(70), fillfactor(100))]
