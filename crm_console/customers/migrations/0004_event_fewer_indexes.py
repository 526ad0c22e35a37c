"""Two indexes fewer for every event insert: the customer foreign key's own index (the
(customer, timestamp) index serves lookups by customer) and PostgreSQL's LIKE-pattern index on
message_id (nothing searches message ids by prefix). The idempotency key stays the same unique
constraint, now declared as one: its index is kept as it is, not rebuilt."""

from django.db import migrations, models


def like_index_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("customers", "Event")._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s "
            "AND indexdef LIKE %s", [table, "%(message_id varchar_pattern_ops)%"])
        for (name,) in cursor.fetchall():
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def like_index_create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("customers", "Event")._meta.db_table
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(table + '_message_id_like')} "
        f"ON {schema_editor.quote_name(table)} (message_id varchar_pattern_ops)")


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_customer_fillfactor")]

    operations = [
        migrations.AlterField(
            model_name="event", name="customer",
            field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE,
                                    related_name="events", to="customers.customer"),
        ),
        # the database already has this constraint (unique=True made it, with this name)
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="event", name="message_id",
                                      field=models.CharField(max_length=200)),
                migrations.AddConstraint(
                    model_name="event",
                    constraint=models.UniqueConstraint(fields=["message_id"],
                                                       name="customers_event_message_id_key"),
                ),
            ],
            database_operations=[migrations.RunPython(like_index_drop, like_index_create)],
        ),
    ]
